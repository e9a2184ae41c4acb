"""From head logits to predictions in ctal_mm's convention, per task kind: the one place."""

from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch import Tensor


def _segmentation(logits: Tensor) -> Tensor:
    return logits.argmax(dim=1, keepdim=True)


def _depth(logits: Tensor) -> Tensor:
    return logits


def _normals(logits: Tensor) -> Tensor:
    return F.normalize(logits, dim=1)


def _edge(logits: Tensor) -> Tensor:
    return torch.sigmoid(logits)


def _saliency(logits: Tensor) -> Tensor:
    # two-class logits (the reference) -> foreground probability; one channel -> sigmoid
    if logits.shape[1] == 2:
        return logits.softmax(dim=1)[:, 1:]
    return torch.sigmoid(logits)


FINALIZE: Dict[str, Callable[[Tensor], Tensor]] = {
    'segmentation': _segmentation,
    'depth': _depth,
    'normals': _normals,
    'edge': _edge,
    'saliency': _saliency,
}

# The loss each kind gets when a task spec names none.
DEFAULT_LOSS = {
    'segmentation': dict(type='MTCrossEntropyLoss'),
    'depth': dict(type='MaskedL1DepthLoss'),
    'normals': dict(type='NormalsLoss', mode='cosine'),
    'edge': dict(type='BalancedBCEEdgeLoss', pos_weight=0.95),
    'saliency': dict(type='BalancedSaliencyLoss'),
}


def finalize_prediction(kind: str, logits: Tensor) -> Tensor:
    """Logits B x C x H x W of a task of ``kind`` -> its prediction (see task_kinds.py)."""
    return FINALIZE[kind](logits)
