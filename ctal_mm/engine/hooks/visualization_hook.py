"""Drawing prediction panels during validation and testing."""

import io
import os.path as osp
import warnings
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.dist import is_main_process
from mmengine.fileio import get
from mmengine.hooks import Hook

from ctal_mm.registry import HOOKS
from ctal_mm.structures import MultiTaskDataSample


@HOOKS.register_module()
class MultiTaskVisualizationHook(Hook):
    """Draws panels (image; per task, ground truth beside prediction) with the runner's visualizer.

    - Validation: every ``interval``-th validation batch, the batch's first sample is drawn and
      recorded in the visualizer's backends (local files, TensorBoard...) under
      ``val_<image name>`` at the current training iteration, so the same images can be
      followed across validations. ``interval=0`` turns this off.
    - Test: with ``draw=True`` every sample is drawn. With ``show_dir`` (alias ``test_out_dir``)
      each panel is written to ``<show_dir>/<image name>.png``; otherwise it goes to the backends
      under ``test_<image name>``.

    ``tools/test.py --show / --show-dir`` switches this hook on as MMSegmentation's does: it sets
    ``draw=True``, ``show`` and ``wait_time`` here and ``save_dir`` on the visualizer. With
    ``show=True`` panels are only shown in a window, so the backends are dropped.

    The image is read from the sample's ``img_path`` (any image file, or a ``.npy`` array such as
    NYUv2's); when there is none or it cannot be read, the batch's input tensor is drawn instead.

    Args:
        draw: draw every test sample.
        interval: draw one validation sample every ``interval`` batches (0: never).
        show: show the panels in a window.
        wait_time: seconds each shown panel stays (0: until a key is pressed).
        show_dir: directory for the test panels' files.
        test_out_dir: alias of ``show_dir`` (MMDetection's name).
        backend_args: file backend arguments for reading images.
    """

    priority = 'NORMAL'

    def __init__(
        self,
        draw: bool = False,
        interval: int = 50,
        show: bool = False,
        wait_time: float = 0.0,
        show_dir: Optional[str] = None,
        test_out_dir: Optional[str] = None,
        backend_args: Optional[dict] = None,
    ):
        if interval < 0:
            raise ValueError(
                f'MultiTaskVisualizationHook(interval={interval}): use a '
                'positive number of validation batches, or 0 to draw none.'
            )
        if show_dir and test_out_dir and show_dir != test_out_dir:
            raise ValueError(
                'MultiTaskVisualizationHook got show_dir='
                f'{show_dir!r} and test_out_dir={test_out_dir!r}; they are '
                'the same setting, give one.'
            )
        self.draw = draw
        self.interval = interval
        self.show = show
        self.wait_time = wait_time
        self.show_dir = show_dir or test_out_dir
        self.backend_args = dict(backend_args) if backend_args else None
        self._test_index = 0
        self._warned_unreadable = False

    @property
    def test_out_dir(self) -> Optional[str]:
        return self.show_dir

    @test_out_dir.setter
    def test_out_dir(self, value: Optional[str]) -> None:
        self.show_dir = value

    def before_run(self, runner) -> None:
        if not hasattr(runner.visualizer, 'draw_panel'):
            warnings.warn(
                'MultiTaskVisualizationHook draws nothing with the visualizer '
                f'{type(runner.visualizer).__name__}: set '
                "visualizer=dict(type='MultiTaskVisualizer', ...) in the "
                'config.'
            )
        if self.show:
            # a window is wanted, not records (as MMSegmentation's hook)
            runner.visualizer._vis_backends = {}

    def after_val_iter(
        self,
        runner,
        batch_idx: int,
        data_batch: dict,
        outputs: Sequence[MultiTaskDataSample],
    ) -> None:
        if not self.interval or batch_idx % self.interval or not outputs:
            return
        if not is_main_process():
            # the visualizer records on rank 0 only; spare the others the image reads
            return
        sample = outputs[0]
        image = self._read_image(sample, data_batch, 0)
        runner.visualizer.add_datasample(
            f'val_{self._image_name(sample, batch_idx)}',
            image,
            data_sample=sample,
            show=self.show,
            wait_time=self.wait_time,
            step=runner.iter,
        )

    def after_test_iter(
        self,
        runner,
        batch_idx: int,
        data_batch: Optional[dict] = None,
        outputs: Sequence[MultiTaskDataSample] = (),
    ) -> None:
        if not self.draw or not is_main_process():
            return
        for index, sample in enumerate(outputs):
            name = self._image_name(sample, self._test_index)
            self._test_index += 1
            out_file = None
            if self.show_dir:
                out_file = osp.join(self.show_dir, f'{name}.png')
            runner.visualizer.add_datasample(
                f'test_{name}',
                self._read_image(sample, data_batch, index),
                data_sample=sample,
                show=self.show,
                wait_time=self.wait_time,
                out_file=out_file,
                step=self._test_index,
            )

    @staticmethod
    def _image_name(sample: MultiTaskDataSample, fallback: int) -> str:
        path = sample.metainfo.get('img_path')
        if path:
            return osp.splitext(osp.basename(path))[0]
        return str(sample.metainfo.get('sample_idx', fallback))

    def _read_image(
        self, sample: MultiTaskDataSample, data_batch, index: int
    ) -> np.ndarray:
        path = sample.metainfo.get('img_path')
        if path:
            try:
                content = get(path, backend_args=self.backend_args)
                if path.endswith('.npy'):
                    image = np.load(io.BytesIO(content), allow_pickle=False)
                else:
                    image = mmcv.imfrombytes(content, channel_order='rgb')
                if image is not None:
                    return image
            except Exception as error:  # a picture must not stop a run
                if not self._warned_unreadable:
                    self._warned_unreadable = True
                    warnings.warn(
                        f'MultiTaskVisualizationHook cannot read {path!r} '
                        f"({error}); drawing the batch's input tensors "
                        'instead. Pass backend_args if the images live on '
                        'another file backend.'
                    )
        inputs = (
            data_batch.get('inputs') if isinstance(data_batch, dict) else None
        )
        if inputs is not None and index < len(inputs):
            return inputs[index]
        raise ValueError(
            f'MultiTaskVisualizationHook cannot find the image of sample '
            f'{index}: its img_path {path!r} is not readable and the batch '
            "has no 'inputs'."
        )
