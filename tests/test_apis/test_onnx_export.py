"""tools/deployment/pytorch2onnx.py: the ONNX graph computes what PyTorch does, every task."""

import pytest
import torch
from repo_scripts import load_script
from tiny_models import SIZE, tiny_config

from ctal_mm.apis import init_model
from ctal_mm.models.decoders.factored_affinity import (
    FactoredAffinityAttention,
    factored_affinity_attention,
)


@pytest.mark.parametrize(
    'model_name, implementation',
    [('ctal', 'plain'), ('ctal', 'factored'), ('hps', 'plain')],
)
def test_export_matches_pytorch_on_every_task(
    model_name, implementation, tmp_path
):
    tool = load_script('tools/deployment/pytorch2onnx.py')
    torch.manual_seed(0)
    model = init_model(tiny_config(model_name, implementation))
    out = str(tmp_path / 'model.onnx')
    tasks = tool.export_onnx(model, out, SIZE)
    assert tasks == list(model.tasks)
    errors = tool.verify_onnx(model, out, SIZE)
    assert set(errors) == set(model.tasks)
    assert max(errors.values()) < 1e-4, errors


def test_factored_forward_without_grad_is_the_functions():
    g = torch.Generator().manual_seed(0)
    B, T, C, h, w = 2, 3, 4, 5, 6
    features = torch.randn(B, T, C, h * w, generator=g)
    values = torch.randn(B, T, C, h * w, generator=g)
    weight = torch.randn(h * w, T, 3, 3, generator=g, requires_grad=True)
    bias = torch.randn(h * w, generator=g)
    with_grad = FactoredAffinityAttention.apply(
        features, values, weight, bias, (h, w)
    )
    with torch.no_grad():
        without = factored_affinity_attention(
            features, values, weight, bias, (h, w)
        )
    assert with_grad.requires_grad and not without.requires_grad
    torch.testing.assert_close(without, with_grad.detach(), rtol=0, atol=0)
