"""Loss-level multitask methods: torchjd's scalarisations and GradNorm."""

import pytest
import torch
from torch import nn
from torchjd import scalarization

from ctal_mm.models.losses import (
    FAMOWeighting,
    GeometricMeanWeighting,
    GradNormWeighting,
    IMTLLWeighting,
    RandomWeighting,
    ScalarizationWeighting,
    STCHWeighting,
)
from ctal_mm.models.losses.loss_keys import ExtraTerm

TASKS = ['a', 'b', 'c']
WEIGHTS = dict(a=1.0, b=2.0, c=0.5)


def _losses(theta):
    # two stages per task, positive, each a different function of theta
    return {
        ('initial', 'a'): theta[0] ** 2 + 1,
        ('final', 'a'): theta[0] ** 2 + theta[1] ** 2,
        ('initial', 'b'): (theta[1] - 1) ** 2 + 0.5,
        ('final', 'b'): theta[2] ** 2 + 0.1,
        ('initial', 'c'): (theta[0] + theta[2]) ** 2 + 0.2,
        ('final', 'c'): theta[1] ** 2 + 0.3,
    }


def _totals(losses):
    return torch.stack(
        [
            WEIGHTS[t] * (losses[('initial', t)] + losses[('final', t)])
            for t in TASKS
        ]
    )


@pytest.mark.parametrize(
    'weighting, reference',
    [
        (GeometricMeanWeighting(TASKS), scalarization.GeometricMean()),
        (STCHWeighting(TASKS, mu=0.5), scalarization.STCH(mu=0.5)),
    ],
)
def test_scalarisation_gives_the_gradient_of_the_scalarised_loss(
    weighting, reference
):
    theta = torch.tensor([0.3, -0.7, 1.2], requires_grad=True)
    out = weighting(_losses(theta), WEIGHTS)
    assert set(out) == set(_losses(theta))
    (ours,) = torch.autograd.grad(sum(out.values()), theta)
    (expected,) = torch.autograd.grad(
        reference(_totals(_losses(theta))), theta
    )
    torch.testing.assert_close(ours, expected)


def test_imtll_trains_its_scales_through_the_params_term():
    weighting = IMTLLWeighting(TASKS)
    with torch.no_grad():
        weighting.scalarizer.log_scale.copy_(torch.tensor([0.1, -0.2, 0.3]))
    theta = torch.tensor([0.3, -0.7, 1.2], requires_grad=True)
    out = weighting(_losses(theta), WEIGHTS)
    assert float(out[ExtraTerm('scalarization.params')]) == 0.0
    total = sum(out.values())
    total.backward()
    reference = scalarization.IMTLL(3)
    with torch.no_grad():
        reference.log_scale.copy_(torch.tensor([0.1, -0.2, 0.3]))
    theta2 = theta.detach().clone().requires_grad_()
    reference(_totals(_losses(theta2))).backward()
    torch.testing.assert_close(theta.grad, theta2.grad)
    torch.testing.assert_close(
        weighting.scalarizer.log_scale.grad, reference.log_scale.grad
    )


def test_random_weights_are_a_convex_combination():
    torch.manual_seed(0)
    theta = torch.tensor([0.3, -0.7, 1.2], requires_grad=True)
    out = RandomWeighting(TASKS)(_losses(theta), WEIGHTS)
    totals = _totals(_losses(theta)).detach()
    coeffs = torch.stack(
        [
            out[('final', t)] / (WEIGHTS[t] * _losses(theta)[('final', t)])
            for t in TASKS
        ]
    ).detach()
    assert torch.all(coeffs > 0)
    torch.testing.assert_close(coeffs.sum(), torch.tensor(1.0))
    assert totals.shape == (3,)


def test_famo_updates_its_logits_from_the_previous_step():
    weighting = FAMOWeighting(TASKS, lr=0.1)
    theta = torch.tensor([0.3, -0.7, 1.2], requires_grad=True)
    weighting(_losses(theta), WEIGHTS)
    logits = weighting.scalarizer._w.detach().clone()
    assert torch.equal(logits, torch.zeros(3))  # nothing to compare yet
    # task a's loss fell, b's rose: FAMO moves weight towards b
    losses = _losses(theta)
    losses[('initial', 'a')] = losses[('initial', 'a')] * 0.5
    losses[('initial', 'b')] = losses[('initial', 'b')] * 2.0
    weighting(losses, WEIGHTS)
    logits = weighting.scalarizer._w.detach()
    assert logits[1] > logits[0]
    assert weighting.scalarizer._w.grad is None  # not the model optimiser's


def test_unknown_scalarizer_is_a_clear_error():
    with pytest.raises(KeyError, match='not a torchjd scalarisation'):
        ScalarizationWeighting(TASKS, 'GeometricMeen')


def test_gradnorm_moves_weight_to_the_task_with_the_smaller_gradient():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.neck = nn.Linear(2, 2, bias=False)
            self.loss_weighting = GradNormWeighting(['a', 'b'], alpha=0.0)

    model = Shared()
    with torch.no_grad():
        model.neck.weight.copy_(torch.eye(2))
    model.loss_weighting.bind_model(model)
    z = model.neck(torch.tensor([1.0, 1.0]))
    losses = {('final', 'a'): 10.0 * z[0], ('final', 'b'): z[1]}
    out = model.loss_weighting(losses, dict(a=1.0, b=1.0))
    # the task terms do not train the weights; the gradnorm term does
    out[('final', 'a')].backward(retain_graph=True)
    assert model.loss_weighting.task_weights.grad is None
    out[ExtraTerm('gradnorm')].backward()
    grad = model.loss_weighting.task_weights.grad
    # task a's gradient norm is 10x b's: lowering v_a and raising v_b balances them
    assert grad[0] > 0 and grad[1] < 0
