"""Writing every test prediction's files (``tools/test.py --out DIR``)."""

import os.path as osp

from mmengine.hooks import Hook

from ctal_mm.registry import HOOKS
from ctal_mm.structures import MultiTaskDataSample, task_kind
from ctal_mm.visualization.prediction_files import write_prediction_files


def sample_stem(sample: MultiTaskDataSample) -> str:
    """A test sample's name in file names: its image's name, else its dataset index."""
    path = sample.metainfo.get('img_path')
    if path:
        return osp.splitext(osp.basename(path))[0]
    return f'{int(sample.metainfo.get("sample_idx", 0)):06d}'


@HOOKS.register_module()
class PredictionFilesHook(Hook):
    """Write every test prediction's files (``tools/test.py --out DIR``).

    Each rank writes the files of the samples it predicts, so a distributed test writes each
    image once. Names as in :func:`write_prediction_files`, the stem from
    :func:`sample_stem`.

    Args:
        out_dir: the directory.
    """

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def after_test_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        model = (
            runner.model.module
            if hasattr(runner.model, 'module')
            else runner.model
        )
        while hasattr(model, 'module'):
            model = model.module
        num_classes = {
            task: spec['channels']
            for task, spec in getattr(model, 'tasks', {}).items()
            if task_kind(spec['kind']).has_classes
        }
        meta = runner.test_dataloader.dataset.metainfo
        for sample in outputs or []:
            write_prediction_files(
                sample, self.out_dir, sample_stem(sample), meta, num_classes
            )
