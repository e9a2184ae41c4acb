"""The task losses and weightings against the CTAL reference's formulas.

Each expected value is the reference's formula written out here with plain
tensor operations (the transformer tree's ATRC-style losses, the CNN tree's
MTAN-style ones), on batches with ignored pixels.
"""

import math

import pytest
import torch

from ctal_mm.models.losses import (
    BalancedBCEEdgeLoss,
    BalancedSaliencyLoss,
    NormalsLoss,
    UncertaintyWeighting,
    UnitWeighting,
)


def _normals_batch(g):
    logits = torch.randn(2, 3, 5, 6, generator=g)
    gt = torch.nn.functional.normalize(
        torch.randn(2, 3, 5, 6, generator=g), dim=1
    )
    gt[0, :, :2] = 0  # invalid: the all-zero vector
    return logits, gt


def test_normals_l1_sums_channels_and_divides_by_valid_pixels():
    g = torch.Generator().manual_seed(0)
    logits, gt = _normals_batch(g)
    unit = logits / logits.norm(dim=1, keepdim=True).clamp_min(1e-12)
    valid = (gt != 0).any(1, keepdim=True).float()
    expected = ((unit - gt).abs() * valid).sum() / valid.sum()
    got = NormalsLoss(mode='l1')(logits, gt)
    torch.testing.assert_close(got, expected)
    elementwise = NormalsLoss(mode='l1_elementwise')(logits, gt)
    torch.testing.assert_close(elementwise * 3, expected)


def test_normals_cosine_is_one_minus_mean_dot():
    g = torch.Generator().manual_seed(1)
    logits, gt = _normals_batch(g)
    unit = logits / logits.norm(dim=1, keepdim=True)
    valid = (gt.sum(1) != 0).float()
    expected = 1 - ((unit * gt).sum(1) * valid).sum() / valid.sum()
    torch.testing.assert_close(
        NormalsLoss(mode='cosine')(logits, gt), expected
    )


def _saliency_batch(g):
    logits = torch.randn(2, 2, 6, 7, generator=g)
    gt = (torch.rand(2, 1, 6, 7, generator=g) < 0.2).float()
    gt[1, :, :2] = 255
    return logits, gt


def test_saliency_divides_the_weighted_sum_by_valid_pixels():
    g = torch.Generator().manual_seed(2)
    logits, gt = _saliency_batch(g)
    label = gt[:, 0].long()
    valid = label != 255
    frac_neg = (label[valid] == 0).float().mean()  # the reference's w_pos
    class_weight = torch.stack([1 - frac_neg, frac_neg])
    logp = torch.log_softmax(logits, 1)
    safe = torch.where(valid, label, 0)
    nll = -logp.gather(1, safe[:, None])[:, 0]
    weighted = class_weight[safe] * nll * valid
    expected = weighted.sum() / valid.sum()
    got = BalancedSaliencyLoss()(logits, gt)
    torch.testing.assert_close(got, expected)
    by_weights = BalancedSaliencyLoss(normalize='weights')(logits, gt)
    torch.testing.assert_close(
        by_weights, weighted.sum() / (class_weight[safe] * valid).sum()
    )
    assert not torch.allclose(got, by_weights)


def test_saliency_rejects_an_unknown_normalisation():
    with pytest.raises(ValueError, match='valid_pixels'):
        BalancedSaliencyLoss(normalize='mean')


def test_edge_is_the_reference_pos_weighted_bce():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 1, 6, 7, generator=g)
    gt = (torch.rand(2, 1, 6, 7, generator=g) < 0.1).float()
    gt[0, :, 0] = 255
    valid = gt != 255
    w = 0.95
    factor = 1 / (1 - w)
    y, x = gt[valid], logits[valid]
    expected = (
        torch.nn.functional.binary_cross_entropy_with_logits(
            x, y, pos_weight=torch.tensor(w * factor)
        )
        / factor
    )
    torch.testing.assert_close(BalancedBCEEdgeLoss()(logits, gt), expected)


def test_reference_uncertainty_counts_every_stage():
    tasks = ['semseg', 'depth']
    weighting = UncertaintyWeighting(tasks, form='reference')
    torch.testing.assert_close(
        weighting.log_vars.detach(), torch.full((2,), -0.5)
    )
    losses = {
        ('initial', 'semseg'): torch.tensor(2.0),
        ('final', 'semseg'): torch.tensor(1.5),
        ('initial', 'depth'): torch.tensor(0.3),
        ('final', 'depth'): torch.tensor(0.2),
    }
    out = weighting(losses, {'semseg': 1.0, 'depth': 10.0})
    s = -0.5
    expected = sum(v / (2 * math.exp(s)) + s / 2 for v in (2.0, 1.5, 0.3, 0.2))
    assert sum(out.values()).item() == pytest.approx(expected, rel=1e-6)
    kendall = UncertaintyWeighting(tasks)
    out = kendall(losses, {'semseg': 1.0, 'depth': 10.0})
    assert sum(out.values()).item() == pytest.approx(3.5 + 10 * 0.5)


def test_unit_weighting_ignores_task_weights():
    losses = {
        ('final', 'a'): torch.tensor(2.0),
        ('final', 'b'): torch.tensor(3.0),
    }
    out = UnitWeighting(['a', 'b'])(losses, {'a': 5.0, 'b': 7.0})
    assert {k: v.item() for k, v in out.items()} == {
        ('final', 'a'): 2.0,
        ('final', 'b'): 3.0,
    }
