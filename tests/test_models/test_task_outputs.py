import torch
import torch.nn.functional as F

from ctal_mm.structures import unit_vectors


def test_unit_vectors_equal_f_normalize_in_values_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    x[0, :, 1, 2] = 0  # a zero vector: stays zero, finite gradient
    x[1, :, 3, 4] = 1e-14  # a norm below the 1e-12 clamp
    weight = torch.randn_like(x)
    results = []
    for normalise in (lambda t: F.normalize(t, dim=1), unit_vectors):
        leaf = x.clone().requires_grad_()
        out = normalise(leaf)
        (grad,) = torch.autograd.grad((out * weight).sum(), leaf)
        results.append((out, grad))
    (expected_out, expected_grad), (out, grad) = results
    torch.testing.assert_close(out, expected_out, rtol=1e-12, atol=1e-12)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-10)


def test_unit_vectors_of_half_precision_logits_are_float32():
    x = torch.randn(2, 3, 4, 4)
    out = unit_vectors(x.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(
        out, F.normalize(x.bfloat16().float(), dim=1), rtol=1e-6, atol=1e-6
    )
