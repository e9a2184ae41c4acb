"""Per-task-kind losses, in both of the CTAL reference's variants.

Every loss takes ``(logits, gt)`` with logits B x C x H x W (raw head outputs, already at the
ground truth's size) and gt in ctal_mm's convention (see ctal_mm/structures/task_kinds.py), and
returns a scalar. Pixels without a label never contribute; a batch without any valid pixel
gives a zero loss that still carries a gradient path (so DDP sees every parameter used).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctal_mm.registry import MODELS
from ctal_mm.structures import IGNORE_INDEX

from ..task_outputs import unit_vectors


def _zero(logits: Tensor) -> Tensor:
    return logits.sum() * 0.0


@MODELS.register_module()
class MTCrossEntropyLoss(nn.Module):
    """Cross-entropy over classes with ignored pixels (semseg, human parts).

    The CNN reference applies log-softmax then NLL, the transformer one cross-entropy: the same
    function. A batch without any labelled pixel (e.g. no person for human parts) gives 0.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, gt: Tensor) -> Tensor:
        target = gt[:, 0].long()
        if not (target != self.ignore_index).any():
            return _zero(logits)
        return F.cross_entropy(logits, target, ignore_index=self.ignore_index)


@MODELS.register_module()
class MaskedL1DepthLoss(nn.Module):
    """L1 over pixels with valid depth (gt > 0), divided by their count (MTAN / CTAL CNN)."""

    def forward(self, logits: Tensor, gt: Tensor) -> Tensor:
        valid = gt > 0
        if not valid.any():
            return _zero(logits)
        return (logits - gt).abs()[valid].mean()


@MODELS.register_module()
class NormalsLoss(nn.Module):
    """Surface-normal loss over valid pixels (gt vector not all zero).

    Args:
        mode: ``'cosine'``: 1 - mean dot product of the L2-normalised prediction with the gt
            (CNN reference); ``'l1'``: mean absolute difference of the L2-normalised prediction
            and the gt over valid pixels and channels (transformer reference).
    """

    def __init__(self, mode: str = 'cosine'):
        super().__init__()
        if mode not in ('cosine', 'l1'):
            raise ValueError(
                f"NormalsLoss: mode must be 'cosine' or 'l1', got {mode!r}."
            )
        self.mode = mode

    def forward(self, logits: Tensor, gt: Tensor) -> Tensor:
        valid = gt.abs().sum(1) > 0  # B H W
        if not valid.any():
            return _zero(logits)
        pred = unit_vectors(logits)
        if self.mode == 'cosine':
            return 1 - (pred * gt).sum(1)[valid].mean()
        return (pred - gt).abs().permute(0, 2, 3, 1)[valid].mean()


@MODELS.register_module()
class BalancedBCEEdgeLoss(nn.Module):
    """HED-style class-balanced binary cross-entropy for edges.

    loss = mean over labelled pixels of  w * y * -log p + (1 - w) * (1 - y) * -log(1 - p), with
    the fixed positive weight w (0.95 in the reference, as in MTI-Net/ATRC).
    """

    def __init__(
        self, pos_weight: float = 0.95, ignore_index: int = IGNORE_INDEX
    ):
        super().__init__()
        self.pos_weight = pos_weight
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, gt: Tensor) -> Tensor:
        valid = gt != self.ignore_index
        if not valid.any():
            return _zero(logits)
        target = (gt == 1).float()
        weight = torch.where(
            target > 0,
            torch.full_like(target, self.pos_weight),
            torch.full_like(target, 1 - self.pos_weight),
        )
        loss = F.binary_cross_entropy_with_logits(
            logits, target, weight=weight, reduction='none'
        )
        return loss[valid].mean()


@MODELS.register_module()
class BalancedSaliencyLoss(nn.Module):
    """Saliency loss with class weights balanced per batch.

    With 2-channel logits: cross-entropy whose class weights are the other class's pixel
    frequency in the batch (the transformer reference); with 1 channel: the same weighting on
    a binary cross-entropy.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, gt: Tensor) -> Tensor:
        valid = gt[:, 0] != self.ignore_index
        if not valid.any():
            return _zero(logits)
        target = gt[:, 0].long()
        pos_frac = (target[valid] == 1).float().mean()
        weights = torch.stack(
            [pos_frac, 1 - pos_frac]
        ).detach()  # w_neg, w_pos
        if logits.shape[1] == 2:
            return (
                F.cross_entropy(
                    logits,
                    target,
                    weight=weights,
                    ignore_index=self.ignore_index,
                )
                if weights.sum() > 0
                else _zero(logits)
            )
        t = (target == 1).float()
        w = torch.where(t > 0, weights[1], weights[0])
        loss = F.binary_cross_entropy_with_logits(
            logits[:, 0], t, weight=w, reduction='none'
        )
        return loss[valid].mean()
