"""The base class of ctal_mm's datasets: one image, several task maps per sample."""

import logging
import os.path as osp
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ctal_mm.registry import DATASETS, TRANSFORMS

from .file_io import DataFileError

DATASET_HINT = (
    'Prepare the dataset as docs/dataset_prepare.md describes and point '
    'data_root at it, e.g. --cfg-options '
    'train_dataloader.dataset.data_root=/path/to/it '
    'val_dataloader.dataset.data_root=/path/to/it '
    'test_dataloader.dataset.data_root=/path/to/it'
)
# metainfo key of a sample that stands in for unreadable ones (skip_unreadable=True): a list
# of dict(index, img_path, error); SkippedSampleHook counts them in the main process.
SKIPPED_KEY = 'skipped_unreadable'


def build_pipeline(
    pipeline: Sequence[Union[dict, Callable]],
) -> List[Callable]:
    """Build the transform configs of ``pipeline`` with ctal_mm's TRANSFORMS.

    mmengine's ``Compose`` builds from the default scope's registry, which is mmengine's own when no
    ``default_scope`` is set; building here finds ctal_mm's transforms (and, through the parent
    registries, mmseg's and mmcv's) whether or not a Runner has set the scope.
    """
    return [
        TRANSFORMS.build(step) if isinstance(step, dict) else step
        for step in pipeline
    ]


class BaseMultiTaskDataset(BaseDataset):
    """A dataset whose samples carry an image and a map per task.

    Subclasses set ``METAINFO`` (at least ``tasks``, the tasks the dataset provides, and
    ``task_kinds``, task -> kind name; for segmentation tasks the class names and colours:
    ``classes`` / ``palette`` for ``semseg`` as in mmseg, ``<task>_classes`` / ``<task>_palette``
    for the others) and implement :meth:`load_data_list`, which lists per sample ``img_path``,
    ``task_kinds`` and ``ann_info`` (task -> ``dict(decoder=..., path=..., **options)``, see
    :mod:`ctal_mm.datasets.transforms.loading`). Loading the files is the pipeline's job.

    The instance's ``metainfo['tasks']`` and ``['task_kinds']`` hold the selected tasks.

    Args:
        data_root: the dataset's root folder.
        split: which split to list (e.g. 'train', 'val').
        tasks: the tasks to load, a subset of ``METAINFO['tasks']`` (default: all of them).
        pipeline: transforms (configs or callables) applied to each sample.
        metainfo: overrides of ``METAINFO`` entries (e.g. ``palette``).
        serialize_data, lazy_init, test_mode, indices, max_refetch: as mmengine's BaseDataset.
        skip_unreadable: in training, a sample whose file raises
            :class:`~ctal_mm.datasets.file_io.DataFileError` (missing, truncated, corrupt) is
            replaced by another, drawn at random, with a warning naming the file; the sample
            that stands in carries ``metainfo['skipped_unreadable']`` and SkippedSampleHook
            reports the count at the end of each epoch. Other errors still stop training.
            Evaluation never skips (``test_mode=True`` refuses this option).
    """

    METAINFO: dict = dict(tasks=(), task_kinds={})
    SPLITS: Sequence[str] = ('train', 'val')

    def __init__(
        self,
        data_root: str = '',
        split: str = 'train',
        tasks: Optional[Sequence[str]] = None,
        pipeline: Sequence[Union[dict, Callable]] = (),
        metainfo: Optional[dict] = None,
        serialize_data: bool = True,
        lazy_init: bool = False,
        test_mode: bool = False,
        indices: Optional[Union[int, Sequence[int]]] = None,
        max_refetch: int = 1000,
        skip_unreadable: bool = False,
    ):
        if skip_unreadable and test_mode:
            raise ValueError(
                f'{type(self).__name__}: skip_unreadable=True with '
                'test_mode=True; evaluation must see every sample. Set '
                'skip_unreadable only on train_dataloader.dataset.'
            )
        self.skip_unreadable = bool(skip_unreadable)
        if split not in self.SPLITS:
            raise ValueError(
                f'{type(self).__name__}: split={split!r}; expected one of '
                f'{tuple(self.SPLITS)}.'
            )
        self.split = split
        self.tasks = self.select_tasks(tasks)
        all_kinds = self.METAINFO['task_kinds']
        self.task_kinds: Dict[str, str] = {t: all_kinds[t] for t in self.tasks}
        metainfo = dict(metainfo or {})
        metainfo.update(tasks=self.tasks, task_kinds=dict(self.task_kinds))
        super().__init__(
            ann_file='',
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=dict(),
            serialize_data=serialize_data,
            pipeline=build_pipeline(pipeline),
            test_mode=test_mode,
            lazy_init=lazy_init,
            indices=indices,
            max_refetch=max_refetch,
        )

    def __getitem__(self, idx: int) -> dict:
        if not self.skip_unreadable:
            return super().__getitem__(idx)
        if not self._fully_initialized:
            self.full_init()
        skipped = []
        for _ in range(self.max_refetch + 1):
            try:
                data = self.prepare_data(idx)
            except DataFileError as error:
                path = self.get_data_info(idx).get('img_path')
                skipped.append(
                    dict(index=idx, img_path=path, error=str(error))
                )
                print_log(
                    f'{type(self).__name__}: skipped unreadable sample {idx} '
                    f'({path}): {error}',
                    logger='current',
                    level=logging.WARNING,
                )
                idx = self._replacement_index({r['index'] for r in skipped})
                continue
            if data is None:  # a transform rejected the sample, as in mmengine
                idx = self._rand_another()
                continue
            if skipped:
                _mark_skipped(data, skipped)
            return data
        raise DataFileError(
            f'{type(self).__name__}: no usable sample in '
            f'{self.max_refetch + 1} tries ({len(skipped)} unreadable; '
            f'skip_unreadable=True, max_refetch={self.max_refetch}); the '
            f'last error: {skipped[-1]["error"] if skipped else "none"}. '
            f'{DATASET_HINT}'
        )

    def _replacement_index(self, unreadable: set) -> int:
        """A random index other than those found unreadable in this call
        (so one bad file is not drawn, logged and recorded twice)."""
        if len(unreadable) >= len(self):
            return self._rand_another()
        while True:
            idx = self._rand_another()
            if idx not in unreadable:
                return idx

    @classmethod
    def select_tasks(cls, tasks: Optional[Sequence[str]]) -> tuple:
        """``tasks`` checked against the dataset's tasks (all of them when None)."""
        available = tuple(cls.METAINFO['tasks'])
        if tasks is None:
            return available
        selected = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        unknown = [t for t in selected if t not in available]
        if unknown or not selected:
            raise ValueError(
                f'{cls.__name__}: tasks={list(selected)} '
                + (
                    f'includes unknown {unknown}; '
                    if unknown
                    else 'is empty; '
                )
                + f'this dataset provides {list(available)}. Set tasks to a '
                'non-empty subset of these.'
            )
        return selected

    def require_dir(self, path: str, what: str) -> str:
        """``path`` if it is a folder, else FileNotFoundError naming it and the fix."""
        if not osp.isdir(path):
            if not osp.isdir(self.data_root or '.'):
                raise FileNotFoundError(
                    f'{type(self).__name__}: data_root {self.data_root!r} '
                    f'(absolute: {osp.abspath(self.data_root or ".")}) does '
                    f'not exist. {DATASET_HINT}'
                )
            raise FileNotFoundError(
                f'{type(self).__name__}: {path} ({what}) does not exist under '
                f'data_root {self.data_root!r}. {DATASET_HINT}'
            )
        return path

    def load_data_list(self) -> List[dict]:
        raise NotImplementedError(
            f'{type(self).__name__} must implement load_data_list().'
        )


def _mark_skipped(data, skipped: list) -> None:
    """Record on the packed sample which samples it stands in for."""
    sample = data.get('data_samples') if isinstance(data, dict) else None
    if sample is not None and hasattr(sample, 'set_metainfo'):
        previous = list(sample.metainfo.get(SKIPPED_KEY, []))
        sample.set_metainfo({SKIPPED_KEY: previous + skipped})
    elif isinstance(data, dict):
        data[SKIPPED_KEY] = list(data.get(SKIPPED_KEY, [])) + skipped


def dataset_metainfo(
    dataset_cfg: Optional[Mapping], strict: bool = False
) -> Optional[dict]:
    """The metainfo (tasks, task kinds, class names, palettes) a dataset config gives, read
    without reading its files: the dataset is built with ``lazy_init`` and no pipeline, so
    its arguments (a label set, a class count, ``metainfo``) count as they do in a run.

    Dataset wrappers (RepeatDataset, ClassBalancedDataset) are looked through. None when the
    config is not a ctal_mm multitask dataset or cannot be built now (building it in the run
    reports why). With ``strict``, the ``ValueError`` a dataset raises for its arguments (an
    unknown task, a bad class count) is raised here, for the config checks to report.
    """
    while isinstance(dataset_cfg, Mapping) and isinstance(
        dataset_cfg.get('dataset'), Mapping
    ):
        dataset_cfg = dataset_cfg['dataset']
    if not isinstance(dataset_cfg, Mapping):
        return None
    try:
        dataset_cls = DATASETS.get(dataset_cfg.get('type', ''))
    except Exception:  # a scope whose package is not installed
        dataset_cls = None
    if dataset_cls is None or 'tasks' not in getattr(
        dataset_cls, 'METAINFO', {}
    ):
        return None
    try:
        dataset = DATASETS.build(
            dict(dataset_cfg, lazy_init=True, pipeline=[])
        )
    except ValueError:
        if strict:
            raise
        return None
    except Exception:
        return None
    return dict(dataset.metainfo)
