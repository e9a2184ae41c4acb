"""Task-aware test-time augmentation in MMEngine's BaseTTAModel form.

The test pipeline's ``TestTimeAug`` gives every image several views (by default the image and
its horizontal mirror); each view goes through the model, its maps are cropped, mirrored back
(normals' x negated) and resized to the original size, turned into averageable quantities
(segmentation softmax, depth, unit normals, probabilities), averaged over the views, and
finalised (segmentation argmax, normals renormalised): each kind's ``tta_average`` and
``tta_merge`` (ctal_mm/structures/task_kinds.py).
"""

import copy
from typing import List, Sequence

import torch
from mmengine.model import BaseTTAModel
from torch import Tensor

from ctal_mm.registry import MODELS
from ctal_mm.structures import MultiTaskDataSample, task_kind


def flip_tta_pipeline(test_pipeline: Sequence[dict]) -> List[dict]:
    """``test_pipeline`` with its final packing replaced by two views: as is and mirrored."""
    pipeline = [copy.deepcopy(dict(t)) for t in test_pipeline]
    if not pipeline or pipeline[-1].get('type') != 'PackMultiTaskInputs':
        raise ValueError(
            'flip_tta_pipeline expects a test pipeline ending in '
            f'PackMultiTaskInputs, got {[t.get("type") for t in pipeline]}.'
        )
    pack = pipeline.pop()
    views = [
        dict(type='MultiTaskRandomFlip', prob=0.0),
        dict(type='MultiTaskRandomFlip', prob=1.0),
    ]
    return pipeline + [dict(type='TestTimeAug', transforms=[views, [pack]])]


def soft_prediction(kind: str, logits: Tensor) -> Tensor:
    """What is averaged over views (the kind's ``tta_average``): class probabilities, or the
    prediction itself."""
    return task_kind(kind).averaged(logits)


def merge_soft_predictions(kind: str, soft: Sequence[Tensor]) -> Tensor:
    """The mean of the views' soft predictions (C x H x W each), finalised (``tta_merge``)."""
    mean = torch.stack(list(soft)).mean(0)
    return task_kind(kind).tta_merge(mean[None])[0]


def unflip(kind: str, x: Tensor) -> Tensor:
    """Mirror back a B x C x H x W map of a horizontally flipped view."""
    x = x.flip(-1)
    if task_kind(kind).flip_negates_x:
        x = torch.cat([-x[:, :1], x[:, 1:]], dim=1)
    return x


class FirstViewPreprocessor:
    """Calls ``preprocessor`` on the first view of a TestTimeAug batch, or on a plain batch."""

    def __init__(self, preprocessor):
        self.preprocessor = preprocessor

    def __call__(self, data: dict, training: bool = False):
        inputs = data['inputs']
        if inputs and isinstance(inputs[0], (list, tuple)):
            data = {key: value[0] for key, value in data.items()}
        return self.preprocessor(data, training)


@MODELS.register_module()
class MultiTaskTTAModel(BaseTTAModel):
    """Averages a MultiTaskEncoderDecoder's predictions over test-time views.

    Views may differ by horizontal flip and, for models that accept other input sizes, by
    scale. CTAL's affinity is built for one input size, so multi-scale views are refused.

    Args:
        module: the model (config or built).
        data_preprocessor: merged into ``module``'s config (as BaseTTAModel).
    """

    @property
    def data_preprocessor(self):
        """The wrapped model's preprocessor; given a batch of views it prepares the first
        view (for tools that probe the model with one batch)."""
        return FirstViewPreprocessor(self.module.data_preprocessor)

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        """The wrapped model's forward (one view), for tools that probe the model."""
        return self.module(inputs, data_samples, mode)

    def test_step(self, data):
        if isinstance(data, dict):
            num_views = len(data['inputs'])
            views = [
                {key: value[i] for key, value in data.items()}
                for i in range(num_views)
            ]
        else:
            raise TypeError(
                'MultiTaskTTAModel expects the dict a TestTimeAug pipeline and '
                f'pseudo_collate give, got {type(data).__name__}.'
            )
        self._check_sizes(views)
        per_view = [self._soft_predict(view) for view in views]
        return self.merge_preds(list(zip(*per_view)))

    def _check_sizes(self, views) -> None:
        shapes = {
            tuple(img.shape[-2:]) for view in views for img in view['inputs']
        }
        if len(shapes) < 2:
            return
        fixed = self.module.fixed_input_size()
        if fixed is not None:
            raise ValueError(
                f'Multi-scale test-time augmentation: the views are {sorted(shapes)} '
                f'but this model accepts one input size, {fixed[0]}x{fixed[1]} '
                "(fixed_input_size(): CTAL's affinity is built for one feature "
                'size). Use '
                'flip-only TTA (one scale in tta_pipeline); multi-scale works for '
                'models without a fixed size (HPS, PAD-Net, ...).'
            )

    @torch.no_grad()
    def _soft_predict(self, data) -> List[MultiTaskDataSample]:
        """One view: per sample ``pred_<task>`` as soft maps at the original size, mirrored
        back if the view is flipped."""
        module = self.module
        data = module.data_preprocessor(data, False)
        inputs, samples = data['inputs'], data['data_samples']
        final = module.decode(inputs)['final']
        H, W = inputs.shape[-2:]
        for i, sample in enumerate(samples):
            meta = sample.metainfo
            left, right, top, bottom = meta.get('padding_size', (0, 0, 0, 0))
            ori_shape = tuple(meta.get('ori_shape', (H, W)))[:2]
            flipped = bool(meta.get('flip', False))
            for task, logits in final.items():
                kind = module.tasks[task]['kind']
                x = logits[i : i + 1, :, top : H - bottom, left : W - right]
                if flipped:
                    x = unflip(kind, x)
                x = module._resize(x, ori_shape)
                sample.set_pred(task, soft_prediction(kind, x)[0])
        return samples

    def merge_preds(
        self, data_samples_list: List[Sequence[MultiTaskDataSample]]
    ) -> List[MultiTaskDataSample]:
        """Per image, the mean over its views of the soft maps, finalised; the ground truth
        and metainfo of the unflipped view."""
        merged = []
        for views in data_samples_list:
            base = next(
                (v for v in views if not v.metainfo.get('flip', False)),
                views[0],
            )
            out = base.clone()
            for task in base.pred_tasks:
                kind = self.module.tasks[task]['kind']
                out.set_pred(
                    task,
                    merge_soft_predictions(
                        kind, [v.pred(task) for v in views]
                    ),
                )
            merged.append(out)
        return merged
