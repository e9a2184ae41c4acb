"""MultiTaskInferencer: every task of a trained model on files, folders and
arrays, and MMSegmentation's ``inference_model`` on it."""

import os
import os.path as osp
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.infer import BaseInferencer
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from rich.progress import track

from ctal_mm.datasets.transforms import (
    UnreadableImageError,
    inference_pipeline,
)
from ctal_mm.models.test_time_aug import MultiTaskTTAModel, flip_tta_pipeline
from ctal_mm.registry import INFERENCERS, TRANSFORMS
from ctal_mm.structures import MultiTaskDataSample, task_kind
from ctal_mm.visualization import MultiTaskVisualizer
from ctal_mm.visualization.prediction_files import write_prediction_files

from .inference import _as_config, init_model, model_input_size

InputType = Union[str, np.ndarray]


def _has_display() -> bool:
    return os.name == 'nt' or bool(
        os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')
    )


@INFERENCERS.register_module()
class MultiTaskInferencer(BaseInferencer):
    """Predict every task of a multitask model, as MMSegmentation's MMSegInferencer.

    Inputs: an image file, a folder (its files, sorted; unreadable ones skipped and counted),
    a BGR array as mmcv reads it (gray, BGRA and 16-bit too), or a list of these. Each image
    is brought to the model's input size (``input_size``, by default the size the config
    trains and tests at) with ``resize_mode`` and every prediction is mapped back to the
    image's original size.

    Args:
        model: config file / Config, or a built model (its ``cfg`` is used).
        weights: checkpoint, loaded strictly (another model's checkpoint is refused).
        device: default: CUDA if available, else CPU.
        input_size: (h, w) fed to the model; default
            :func:`~ctal_mm.apis.inference.model_input_size` (the model's fixed
            input size, else the config's); None there means each image at its
            own size, padded to a multiple of 32.
        resize_mode: 'resize' (stretch to the input size, default) or 'keep_ratio_pad'
            (scale to fit, pad the rest; the padding is dropped from the predictions).
        tta: average each prediction with that of the mirrored image
            (:class:`~ctal_mm.models.MultiTaskTTAModel`).
        cfg_options: overrides merged into the config.
        show_progress: a progress bar over batches.

    Example:
        >>> inferencer = MultiTaskInferencer(CONFIG, CHECKPOINT)
        >>> result = inferencer('photos/', out_dir='predictions/')
        >>> result['predictions'][0]['depth'].shape   # 1 x H x W, metres
    """

    preprocess_kwargs: set = set()
    forward_kwargs: set = set()
    visualize_kwargs: set = {'show', 'wait_time', 'with_labels', 'draw_panel'}
    postprocess_kwargs: set = {'out_dir'}

    def __init__(
        self,
        model: Union[str, dict, BaseModel],
        weights: Optional[str] = None,
        device: Optional[str] = None,
        input_size: Union[str, Sequence[int], None] = 'config',
        resize_mode: str = 'resize',
        tta: bool = False,
        cfg_options: Optional[dict] = None,
        show_progress: bool = True,
    ):
        # BaseInferencer.__init__ builds from a config only; a built model is also accepted
        self.scope = 'ctal_mm'
        init_default_scope('ctal_mm')
        if isinstance(model, torch.nn.Module):
            if weights is not None:
                raise ValueError(
                    'Pass weights with a config, or a model already loaded, not '
                    'both.'
                )
            self.model = model.eval()
            cfg = _as_config(model.cfg, cfg_options)
        else:
            cfg = _as_config(model, cfg_options)
            if device is None:
                device = 'cuda' if torch.cuda.is_available() else 'cpu'
            self.model = init_model(cfg, weights, device)
        self.cfg = cfg
        self.show_progress = show_progress
        if isinstance(input_size, str):
            input_size = model_input_size(self.model, cfg)
        self.input_size = None if input_size is None else tuple(input_size)
        self.resize_mode = resize_mode
        self.tta = tta
        self.tta_model = MultiTaskTTAModel(self.model) if tta else None
        self.dataset_meta = dict(getattr(self.model, 'dataset_meta', {}) or {})
        self.pipeline = self._init_pipeline(cfg)
        self.collate_fn = pseudo_collate
        self.visualizer = self._init_visualizer(cfg)
        self.skipped: List[Tuple[str, str]] = []
        self._folder_run = False

    # -- building --------------------------------------------------------------------------

    def _init_pipeline(self, cfg) -> List:
        steps = inference_pipeline(self.input_size, self.resize_mode)
        if self.tta:
            steps = flip_tta_pipeline(steps)
        built = [TRANSFORMS.build(step) for step in steps]
        # the loader runs alone so that the original image is kept for the panel
        self.loader, self.transforms = built[0], built[1:]
        return built

    def _init_visualizer(self, cfg) -> MultiTaskVisualizer:
        name = f'ctal_mm-inferencer-{id(self)}-{time.time()}'
        visualizer = MultiTaskVisualizer(name=name)
        visualizer.dataset_meta = self.dataset_meta
        return visualizer

    def num_classes(self) -> Dict[str, int]:
        return {
            task: spec['channels']
            for task, spec in self.model.tasks.items()
            if task_kind(spec['kind']).has_classes
        }

    # -- inputs ----------------------------------------------------------------------------

    def _inputs_to_list(self, inputs) -> List:
        self._folder_run = isinstance(inputs, str) and osp.isdir(inputs)
        if self._folder_run:
            return [
                osp.join(inputs, name)
                for name in sorted(os.listdir(inputs))
                if osp.isfile(osp.join(inputs, name))
            ]
        if isinstance(inputs, (list, tuple)):
            return list(inputs)
        return [inputs]

    def _stems(self, inputs: List) -> List[str]:
        stems, seen = [], {}
        for index, item in enumerate(inputs):
            stem = (
                osp.splitext(osp.basename(item))[0]
                if isinstance(item, str)
                else f'{index:06d}'
            )
            if stem in seen:
                seen[stem] += 1
                stem = f'{stem}_{seen[stem]}'
            else:
                seen[stem] = 0
            stems.append(stem)
        return stems

    def preprocess(
        self, inputs: List, batch_size: int = 1, **kwargs
    ) -> Iterator[Tuple[dict, List[np.ndarray], List[str]]]:
        """Batches ``(data, original RGB images, stems)``; in a folder run unreadable files
        are recorded in ``self.skipped`` instead of raising."""
        stems = self._stems(inputs)
        chunk, originals, names = [], [], []
        for item, stem in zip(inputs, stems):
            try:
                results = self.loader(dict(img=item))
            except UnreadableImageError as error:
                if not self._folder_run:
                    raise
                self.skipped.append((item, str(error)))
                continue
            originals.append(results['img'])
            for transform in self.transforms:
                results = transform(results)
            chunk.append(results)
            names.append(stem)
            if len(chunk) == batch_size:
                yield self.collate_fn(chunk), originals, names
                chunk, originals, names = [], [], []
        if chunk:
            yield self.collate_fn(chunk), originals, names

    @torch.no_grad()
    def forward(self, inputs: dict, **kwargs) -> List[MultiTaskDataSample]:
        model = self.tta_model if self.tta else self.model
        return model.test_step(inputs)

    # -- outputs ---------------------------------------------------------------------------

    def visualize(
        self,
        inputs: List[np.ndarray],
        preds: List[MultiTaskDataSample],
        show: bool = False,
        wait_time: float = 0,
        with_labels: bool = True,
        draw_panel: bool = True,
        names: Optional[List[str]] = None,
    ) -> List[np.ndarray]:
        """The visualiser's panel of each image (its predictions), shown if asked."""
        if not (draw_panel or show):
            return []
        panels = []
        for index, (image, pred) in enumerate(zip(inputs, preds)):
            image = np.clip(np.round(image), 0, 255).astype(np.uint8)
            panel = self.visualizer.draw_panel(
                image, pred, draw_gt=False, with_labels=with_labels
            )
            if show:
                self.visualizer.show(
                    panel,
                    win_name=names[index] if names else 'prediction',
                    wait_time=wait_time,
                )
            panels.append(panel)
        return panels

    def postprocess(
        self,
        preds: List[MultiTaskDataSample],
        visualization: List[np.ndarray],
        return_datasamples: bool = False,
        out_dir: str = '',
        names: Optional[List[str]] = None,
    ) -> dict:
        """Write the files (with ``out_dir``) and return the predictions: data samples, or
        per image ``{task: C x H x W numpy array}``."""
        if out_dir:
            for index, pred in enumerate(preds):
                write_prediction_files(
                    pred,
                    out_dir,
                    names[index],
                    self.dataset_meta,
                    self.num_classes(),
                )
                if visualization:
                    path = osp.join(out_dir, 'panel', names[index] + '.png')
                    os.makedirs(osp.dirname(path), exist_ok=True)
                    import cv2

                    cv2.imwrite(path, visualization[index][..., ::-1])
        if return_datasamples:
            predictions = list(preds)
        else:
            predictions = [
                {task: p.pred(task).cpu().numpy() for task in p.pred_tasks}
                for p in preds
            ]
        return dict(predictions=predictions, visualization=visualization)

    def __call__(
        self,
        inputs: Union[InputType, Sequence[InputType]],
        return_datasamples: bool = False,
        batch_size: int = 1,
        out_dir: str = '',
        show: bool = False,
        wait_time: float = 0,
        with_labels: bool = True,
        draw_panel: Optional[bool] = None,
        return_vis: bool = False,
    ) -> dict:
        """Predict, write and return, batch by batch.

        Args:
            inputs: a file, a folder, an array or a list of them.
            return_datasamples: return MultiTaskDataSamples instead of numpy dicts.
            batch_size: images per forward.
            out_dir: write the files of :mod:`ctal_mm.visualization.prediction_files` there.
            show: show each panel in a window (ignored, with a warning, without a display).
            wait_time: seconds each window stays (0: until a key).
            with_labels: class names on the panels' segmentation tiles.
            draw_panel: draw (and with ``out_dir`` write) the panel; default: when writing
                or showing.
            return_vis: return the panels.

        Returns:
            ``dict(predictions=[...], visualization=[...], skipped=[(file, reason)])``, one
            prediction per readable input, in input order.
        """
        if show and not _has_display():
            print_log(
                'show=True but there is no display (DISPLAY is not set); '
                'nothing is shown. Use out_dir to write the panels.',
                logger='current',
                level=30,
            )
            show = False
        if draw_panel is None:
            draw_panel = bool(out_dir) or show or return_vis
        self.skipped = []
        ori_inputs = self._inputs_to_list(inputs)
        batches = self.preprocess(ori_inputs, batch_size=batch_size)
        if self.show_progress:
            total = -(-len(ori_inputs) // batch_size)
            batches = track(batches, description='Inference', total=total)
        predictions, visualization = [], []
        for data, originals, names in batches:
            preds = self.forward(data)
            panels = self.visualize(
                originals,
                preds,
                show,
                wait_time,
                with_labels,
                draw_panel,
                names,
            )
            result = self.postprocess(
                preds, panels, return_datasamples, out_dir, names
            )
            predictions.extend(result['predictions'])
            if return_vis:
                visualization.extend(panels)
        if self.skipped:
            print_log(
                f'Skipped {len(self.skipped)} of {len(ori_inputs)} inputs that '
                'are not readable images: '
                + '; '.join(reason for _, reason in self.skipped),
                logger='current',
                level=30,
            )
        return dict(
            predictions=predictions,
            visualization=visualization,
            skipped=list(self.skipped),
        )


def inference_model(
    model: BaseModel, imgs: Union[InputType, Sequence[InputType]]
) -> Union[MultiTaskDataSample, List[MultiTaskDataSample]]:
    """Predict every task on one image or a list (paths or BGR arrays as mmcv
    reads them).

    Each image is brought to the model's input size (resized, see
    :class:`MultiTaskInferencer`) and every ``pred_<task>`` comes back at the
    image's original size.

    Returns:
        One :class:`MultiTaskDataSample` for one image, a list for a list.
    """
    inferencer = MultiTaskInferencer(model, show_progress=False)
    single = not isinstance(imgs, (list, tuple))
    result = inferencer(imgs, return_datasamples=True)['predictions']
    if single:
        return result[0]
    return result
