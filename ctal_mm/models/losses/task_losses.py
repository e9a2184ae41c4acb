"""Per-task-kind losses, with the reductions of the CTAL reference's two trees.

Each class docstring says whose formula it is; where two conventions exist, a named argument
chooses (the shipped configs pick the reference's).

Every loss takes ``(logits, gt)`` with logits B x C x H x W (raw head outputs, already at the
ground truth's size) and gt in ctal_mm's convention (see ctal_mm/structures/task_kinds.py), and
returns a scalar. Pixels without a label never contribute; a batch without any valid pixel
gives a zero loss that still carries a gradient path (so DDP sees every parameter used).
``ACCEPTED_KINDS`` names the task kinds a loss is written for (the config checks read it).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ctal_mm.registry import MODELS
from ctal_mm.structures import IGNORE_INDEX, unit_vectors


def _zero(logits: Tensor) -> Tensor:
    return logits.sum() * 0.0


@MODELS.register_module()
class MTCrossEntropyLoss(nn.Module):
    """Cross-entropy over classes with ignored pixels (semseg, human parts).

    The CNN reference applies log-softmax then NLL, the transformer one cross-entropy: the same
    function. A batch without any labelled pixel (e.g. no person for human parts) gives 0.
    """

    ACCEPTED_KINDS = ('segmentation', 'edge', 'saliency')

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

    ACCEPTED_KINDS = ('depth',)

    def forward(self, logits: Tensor, gt: Tensor) -> Tensor:
        valid = gt > 0
        if not valid.any():
            return _zero(logits)
        return (logits - gt).abs()[valid].mean()


@MODELS.register_module()
class NormalsLoss(nn.Module):
    """Surface-normal loss over valid pixels (gt vector not all zero).

    Args:
        mode: ``'cosine'``: 1 - mean over valid pixels of the dot product of
            the L2-normalised prediction with the gt (the CNN reference);
            ``'l1'``: absolute difference of the L2-normalised prediction and
            the gt, summed over the 3 channels and divided by the number of
            valid pixels (the transformer reference, after ATRC);
            ``'l1_elementwise'``: the same absolute difference averaged over
            valid pixels x channels, i.e. 1/3 of ``'l1'`` (MTI-Net's NYUD
            normals loss, which counts valid elements).
    """

    ACCEPTED_KINDS = ('normals',)
    MODES = ('cosine', 'l1', 'l1_elementwise')

    def __init__(self, mode: str = 'cosine'):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(
                f'NormalsLoss: mode must be one of {self.MODES}, got {mode!r}.'
            )
        self.mode = mode

    def forward(self, logits: Tensor, gt: Tensor) -> Tensor:
        valid = gt.abs().sum(1) > 0  # B H W
        if not valid.any():
            return _zero(logits)
        pred = unit_vectors(logits)
        if self.mode == 'cosine':
            return 1 - (pred * gt).sum(1)[valid].mean()
        per_pixel = (pred - gt).abs().sum(1)[valid]
        if self.mode == 'l1':
            return per_pixel.mean()
        return per_pixel.mean() / gt.shape[1]


@MODELS.register_module()
class BalancedBCEEdgeLoss(nn.Module):
    """HED-style class-balanced binary cross-entropy for edges.

    loss = mean over labelled pixels of  w * y * -log p + (1 - w) * (1 - y) * -log(1 - p), with
    the fixed positive weight w (0.95 in the reference, as in MTI-Net/ATRC).
    """

    ACCEPTED_KINDS = ('edge', 'saliency')

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

    Each class is weighted by the other class's fraction of the batch's
    labelled pixels (w_neg = salient fraction, w_pos = 1 - w_neg).

    Args:
        ignore_index: Label of unlabelled pixels.
        normalize: What the sum of the weighted per-pixel losses is divided
            by. ``'valid_pixels'``: the number of labelled pixels (the
            transformer reference, after ATRC); ``'weights'``: the sum of the
            pixels' class weights, PyTorch's weighted-mean cross-entropy (the
            CNN reference's formula; its value depends on the batch's salient
            fraction: it is the ``'valid_pixels'`` value divided by
            2 f (1 - f), f the salient fraction).

    With 2-channel logits the per-pixel loss is the two-class cross-entropy;
    with 1 channel, the binary cross-entropy of the logit.
    """

    ACCEPTED_KINDS = ('saliency', 'edge')
    NORMALIZE = ('valid_pixels', 'weights')

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        normalize: str = 'valid_pixels',
    ):
        super().__init__()
        if normalize not in self.NORMALIZE:
            raise ValueError(
                f'BalancedSaliencyLoss: normalize must be one of '
                f'{self.NORMALIZE}, got {normalize!r}.'
            )
        self.ignore_index = ignore_index
        self.normalize = normalize

    def forward(self, logits: Tensor, gt: Tensor) -> Tensor:
        valid = gt[:, 0] != self.ignore_index
        if not valid.any():
            return _zero(logits)
        target = gt[:, 0].long()
        pos_frac = (target[valid] == 1).float().mean()
        class_weights = torch.stack([pos_frac, 1 - pos_frac]).detach()
        positive = target == 1
        if logits.shape[1] == 2:
            per_pixel = F.cross_entropy(
                logits,
                torch.where(valid, target, torch.zeros_like(target)),
                reduction='none',
            )
        else:
            per_pixel = F.binary_cross_entropy_with_logits(
                logits[:, 0], positive.float(), reduction='none'
            )
        pixel_weights = torch.where(
            positive, class_weights[1], class_weights[0]
        )[valid]
        total = (pixel_weights * per_pixel[valid]).sum()
        if self.normalize == 'valid_pixels':
            return total / valid.sum()
        denominator = pixel_weights.sum()
        if denominator <= 0:  # one class only: both weights of the
            return _zero(logits)  # present class are 0
        return total / denominator
