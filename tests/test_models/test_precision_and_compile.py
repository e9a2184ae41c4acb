"""CTAL under mixed precision (``--amp``) and ``torch.compile`` computes what
it computes in float32 eager mode, within the precision of each."""

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper

from ctal_mm.models.decoders.ctal import CrossTaskAffinityModule
from ctal_mm.registry import MODELS
from ctal_mm.testing import base_model_config, random_multitask_batch
from ctal_mm.utils import register_all_modules

register_all_modules()
IMPLEMENTATIONS = ['plain', 'factored']


def _loss_and_grads(model, data, context):
    model.zero_grad()
    with context:
        losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    grads = torch.cat(
        [p.grad.flatten() for p in model.parameters() if p.grad is not None]
    )
    return loss.item(), grads


@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
def test_bf16_autocast_loss_and_gradient_match_float32(implementation):
    cfg = base_model_config('configs/_base_/models/ctal_hrnet18s.py')
    cfg.decoder.affinity.update(
        feature_size=(8, 8), implementation=implementation
    )
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()  # BN in eval: both passes see one model
    batch = random_multitask_batch(cfg.tasks, (32, 32), batch_size=2)
    data = model.data_preprocessor(batch, True)
    wrapper = build_optim_wrapper(
        model,
        dict(
            type='AutocastOptimWrapper',
            dtype='bfloat16',
            optimizer=dict(type='Adam', lr=1e-4),
        ),
    )
    loss32, grads32 = _loss_and_grads(model, data, torch.enable_grad())
    loss16, grads16 = _loss_and_grads(
        model, data, wrapper.optim_context(model)
    )
    # bf16 keeps 8 bits of mantissa: ~1e-2 relative
    assert loss16 == pytest.approx(loss32, rel=3e-2)
    assert F.cosine_similarity(grads16, grads32, dim=0) > 0.98


@pytest.mark.parametrize('implementation', IMPLEMENTATIONS)
def test_compiled_affinity_module_equals_eager(implementation):
    torch.manual_seed(0)
    module = CrossTaskAffinityModule(
        ['a', 'b'],
        in_channels=8,
        channels=6,
        feature_size=(6, 5),
        implementation=implementation,
    )
    feats = {t: torch.randn(2, 8, 6, 5, requires_grad=True) for t in 'ab'}

    def run(forward):
        out = forward(feats)
        loss = sum(o.square().sum() for o in out.values())
        inputs = list(module.parameters()) + list(feats.values())
        return out, torch.autograd.grad(loss, inputs)

    eager_out, eager_grads = run(module)
    # aot_eager: dynamo + autograd tracing, no C++ code generation (the
    # inductor backend computes the same graph, compiled)
    compiled_out, compiled_grads = run(
        torch.compile(module, backend='aot_eager')
    )
    for t in 'ab':
        torch.testing.assert_close(compiled_out[t], eager_out[t])
    for c, e in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(c, e)
