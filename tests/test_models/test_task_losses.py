"""Every per-task loss against values computed by hand on a few pixels.

The logits are chosen so that the probabilities are simple fractions: a logit of ln 3 is a
sigmoid of 3/4, the logit pair (0, ln 3) a softmax of (1/4, 3/4).
"""

import math

import pytest
import torch

from ctal_mm.models.losses import (
    BalancedBCEEdgeLoss,
    BalancedSaliencyLoss,
    MaskedL1DepthLoss,
    MTCrossEntropyLoss,
    NormalsLoss,
)

LN3 = math.log(3.0)


def _close(value, expected):
    assert value.dim() == 0
    assert value.item() == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_cross_entropy_averages_the_labelled_pixels():
    # pixels: softmax (1/4, 3/4) label 1; (3/4, 1/4) label 1; a third pixel ignored
    logits = torch.tensor([[0.0, LN3, 5.0], [LN3, 0.0, -5.0]]).view(1, 2, 1, 3)
    gt = torch.tensor([1, 1, 255]).view(1, 1, 1, 3)
    expected = (-math.log(3 / 4) - math.log(1 / 4)) / 2
    _close(MTCrossEntropyLoss()(logits, gt), expected)


def test_masked_l1_depth_skips_zero_depth():
    pred = torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 1, 3)
    gt = torch.tensor([1.5, 0.0, 1.0]).view(1, 1, 1, 3)
    _close(MaskedL1DepthLoss()(pred, gt), (0.5 + 2.0) / 2)


def _normals():
    # prediction (2, 0, 0) -> unit (1, 0, 0) against (0.6, 0.8, 0); (0, 0, 3) against
    # (0, 0, 1); a third pixel with an all-zero (invalid) ground truth
    pred = torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
    gt = torch.tensor([[0.6, 0.0, 0.0], [0.8, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return pred.view(1, 3, 1, 3), gt.view(1, 3, 1, 3)


@pytest.mark.parametrize(
    'mode, expected',
    [
        ('cosine', 1 - (0.6 + 1.0) / 2),  # 1 - mean dot product
        ('l1', (0.4 + 0.8 + 0.0) / 2),  # channel sum / valid pixels
        ('l1_elementwise', (0.4 + 0.8 + 0.0) / 6),  # / valid elements
    ],
)
def test_normals_losses(mode, expected):
    _close(NormalsLoss(mode)(*_normals()), expected)


def test_balanced_bce_edge_weights_positives_by_pos_weight():
    # an edge pixel at sigmoid 3/4, a background pixel at 1/2, an ignored pixel
    logits = torch.tensor([LN3, 0.0, 9.0]).view(1, 1, 1, 3)
    gt = torch.tensor([1, 0, 255]).view(1, 1, 1, 3)
    expected = (0.95 * -math.log(3 / 4) + 0.05 * -math.log(1 / 2)) / 2
    _close(BalancedBCEEdgeLoss(pos_weight=0.95)(logits, gt), expected)


def _saliency(channels):
    # salient pixel at p = 3/4, two background pixels at p = 1/2 and 3/4, one ignored:
    # salient fraction f = 1/3, so background pixels weigh 1/3, salient ones 2/3
    fg = torch.tensor([LN3, 0.0, LN3, 7.0])
    logits = fg if channels == 1 else torch.stack([torch.zeros(4), fg])
    gt = torch.tensor([1, 0, 0, 255]).view(1, 1, 1, 4)
    return logits.view(1, channels, 1, 4), gt


SALIENCY_TOTAL = (
    2 / 3 * -math.log(3 / 4)
    + 1 / 3 * -math.log(1 / 2)
    + 1 / 3 * -math.log(1 / 4)
)


@pytest.mark.parametrize('channels', [1, 2])
@pytest.mark.parametrize(
    'normalize, denominator',
    [('valid_pixels', 3), ('weights', 2 / 3 + 1 / 3 + 1 / 3)],
)
def test_balanced_saliency(channels, normalize, denominator):
    loss = BalancedSaliencyLoss(normalize=normalize)(*_saliency(channels))
    _close(loss, SALIENCY_TOTAL / denominator)


@pytest.mark.parametrize(
    'loss, logits, gt',
    [
        (
            MTCrossEntropyLoss(),
            torch.randn(1, 3, 2, 2),
            torch.full((1, 1, 2, 2), 255),
        ),
        (
            MaskedL1DepthLoss(),
            torch.randn(1, 1, 2, 2),
            torch.zeros(1, 1, 2, 2),
        ),
        (NormalsLoss(), torch.randn(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)),
        (
            BalancedBCEEdgeLoss(),
            torch.randn(1, 1, 2, 2),
            torch.full((1, 1, 2, 2), 255),
        ),
        (
            BalancedSaliencyLoss(),
            torch.randn(1, 2, 2, 2),
            torch.full((1, 1, 2, 2), 255),
        ),
    ],
)
def test_a_batch_without_labels_gives_zero_with_a_gradient_path(
    loss, logits, gt
):
    logits.requires_grad_(True)
    value = loss(logits, gt)
    assert value.item() == 0.0
    value.backward()  # DDP needs every parameter in the graph
    assert torch.equal(logits.grad, torch.zeros_like(logits))
