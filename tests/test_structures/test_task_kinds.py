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


def test_the_registry_refuses_duplicates_and_names_the_known_kinds():
    import pytest

    from ctal_mm.structures import (
        TASK_KINDS,
        TaskKind,
        register_task_kind,
        task_kind,
    )

    with pytest.raises(KeyError, match='already registered'):
        register_task_kind(TaskKind('depth', 1, 0.0, is_label=False))
    with pytest.raises(KeyError, match="known kinds: .*'segmentation'"):
        task_kind('no_such_kind')
    assert set(TASK_KINDS) >= {
        'segmentation',
        'depth',
        'normals',
        'edge',
        'saliency',
    }


def test_a_task_kind_comes_from_its_spec_or_its_reference_name():
    import pytest

    from ctal_mm.structures import get_task_kind

    assert get_task_kind('semseg').name == 'segmentation'
    assert get_task_kind('human_parts').name == 'segmentation'
    assert get_task_kind('mine', {'mine': 'depth'}).name == 'depth'
    with pytest.raises(KeyError, match="kind='segmentation'"):
        get_task_kind('albedo')


def test_finalisation_and_tta_merging_per_kind():
    from ctal_mm.structures import task_kind

    torch.manual_seed(0)
    logits = torch.randn(1, 4, 3, 5)
    seg = task_kind('segmentation')
    assert torch.equal(seg.finalize(logits), logits.argmax(1, keepdim=True))
    torch.testing.assert_close(seg.averaged(logits), logits.softmax(1))
    views = [seg.averaged(logits)[0], seg.averaged(-logits)[0]]
    mean = (views[0] + views[1]) / 2
    merged = seg.tta_merge(mean[None])[0]
    assert torch.equal(merged, mean.argmax(0, keepdim=True))
    normals = task_kind('normals')
    torch.testing.assert_close(
        normals.finalize(logits[:, :3]), F.normalize(logits[:, :3], dim=1)
    )
    two = torch.randn(1, 2, 3, 5)
    saliency = task_kind('saliency')
    torch.testing.assert_close(saliency.finalize(two), two.softmax(1)[:, 1:])
    edge = task_kind('edge')
    torch.testing.assert_close(edge.averaged(two[:, :1]), two[:, :1].sigmoid())
    depth = task_kind('depth')
    assert torch.equal(depth.finalize(two[:, :1]), two[:, :1])
