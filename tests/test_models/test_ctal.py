"""CTAL: parameter counts of the reference, the three modes, both implementations agreeing,
activation checkpointing."""

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from ctal_mm.models.decoders.ctal import CrossTaskAffinityModule
from ctal_mm.registry import MODELS
from ctal_mm.structures import MultiTaskDataSample
from ctal_mm.testing import base_model_config, random_multitask_samples
from ctal_mm.utils import register_all_modules

register_all_modules()
CTAL_CONFIG = 'configs/_base_/models/ctal_hrnet18s.py'
ALL_KINDS = dict(
    semseg=dict(kind='segmentation', channels=5),
    depth=dict(kind='depth', channels=1),
    normals=dict(kind='normals', channels=3),
    edge=dict(kind='edge', channels=1),
    saliency=dict(kind='saliency', channels=2),
    human_parts=dict(kind='segmentation', channels=7),
)


def _params(model):
    return sum(p.numel() for p in model.parameters())


def _model_cfg(tasks=None, feature_size=(8, 8), **affinity):
    cfg = base_model_config(CTAL_CONFIG)
    if tasks is not None:
        cfg.tasks = tasks
    cfg.decoder.affinity.feature_size = feature_size
    cfg.decoder.affinity.update(affinity)
    return cfg


_samples = random_multitask_samples


def test_nyuv2_and_cityscapes_parameter_counts_equal_the_reference():
    nyu = MODELS.build(base_model_config(CTAL_CONFIG))
    assert _params(nyu) == 6_057_216
    city = _model_cfg(
        tasks=dict(
            semseg=dict(kind='segmentation', channels=19),
            depth=dict(kind='depth', channels=1, weight=10.0),
        ),
        feature_size=(32, 64),
    )
    assert _params(MODELS.build(city)) == 5_262_854


@pytest.mark.parametrize(
    'task_names',
    [('semseg', 'depth', 'normals'), tuple(ALL_KINDS), ('depth',)],
)
def test_loss_and_predict_for_task_sets(task_names):
    tasks = {t: ALL_KINDS[t] for t in task_names}
    model = MODELS.build(_model_cfg(tasks=tasks))
    inputs = [torch.rand(3, 32, 32) * 255 for _ in range(2)]
    samples = _samples(tasks, (32, 32))
    data = model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), True
    )
    losses = model(**data, mode='loss')
    assert set(losses) == {
        f'{stage}.{t}.loss' for stage in ('initial', 'final') for t in tasks
    }
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.decoder.affinity.fusion.weight.grad.abs().sum() > 0

    model.eval()
    data = model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), False
    )
    with torch.no_grad():
        preds = model(**data, mode='predict')
    for name, spec in tasks.items():
        pred = preds[0].pred(name)
        assert pred.shape[-2:] == (32, 32)
        if spec['kind'] == 'segmentation':
            assert pred.dtype == torch.int64 and pred.max() < spec['channels']
        elif spec['kind'] == 'normals':
            torch.testing.assert_close(pred.norm(dim=0), torch.ones(32, 32))
        elif spec['kind'] in ('edge', 'saliency'):
            assert pred.shape[0] == 1 and 0 <= pred.min() and pred.max() <= 1


def test_predict_crops_padding_and_resizes_to_the_original_size():
    tasks = {'depth': ALL_KINDS['depth']}
    model = MODELS.build(_model_cfg(tasks=tasks)).eval()
    sample = MultiTaskDataSample(
        metainfo=dict(ori_shape=(20, 28), padding_size=(0, 4, 0, 2))
    )
    with torch.no_grad():
        (out,) = model.predict(torch.rand(1, 3, 32, 32), [sample])
        logits = model.decode(torch.rand(1, 3, 32, 32))
    assert out.pred('depth').shape == (1, 20, 28)
    assert 'final' in logits and logits['final']['depth'].shape[-2:] == (
        32,
        32,
    )


def test_wrong_input_size_says_which_size_and_which_keys():
    model = MODELS.build(
        _model_cfg(tasks={'depth': ALL_KINDS['depth']}, feature_size=(8, 8))
    )
    with pytest.raises(
        ValueError, match=r'8x8 features.*got 10x10.*32x32.*feature_size'
    ):
        model.decode(torch.rand(1, 3, 40, 40))


def test_missing_ground_truth_names_the_task():
    tasks = {'depth': ALL_KINDS['depth'], 'normals': ALL_KINDS['normals']}
    model = MODELS.build(_model_cfg(tasks=tasks))
    samples = _samples({'depth': ALL_KINDS['depth']}, (32, 32))
    with pytest.raises(KeyError, match="task 'normals'.*dataset's tasks"):
        model.loss(torch.rand(2, 3, 32, 32), samples)


@pytest.mark.parametrize(
    'conv_in_norm,dtype,size',
    [
        (False, torch.float64, (6, 5)),
        (True, torch.float64, (6, 5)),
        (False, torch.float32, (6, 5)),
        # 1-wide and 1-high grids: every neighbour but one is padding
        (False, torch.float64, (1, 7)),
        (False, torch.float64, (5, 1)),
        # more positions than 9 T C (the regime factored is for)
        (False, torch.float64, (12, 10)),
    ],
)
def test_factored_equals_plain_in_outputs_and_gradients(
    conv_in_norm, dtype, size
):
    # float64: the two implementations compute the same function (tight
    # tolerance); float32: they agree to rounding, measured against each
    # tensor's scale (some gradients are sums of cancelling terms).
    torch.manual_seed(0)
    names = ['a', 'b', 'c']
    kwargs = dict(
        in_channels=8,
        channels=6,
        feature_size=size,
        conv_in_norm=conv_in_norm,
    )
    plain = CrossTaskAffinityModule(names, **kwargs).to(dtype)
    # make gamma large so that the attended part dominates and is really compared
    plain.gamma = factored_gamma = 0.7
    factored = CrossTaskAffinityModule(
        names, implementation='factored', **kwargs
    ).to(dtype)
    factored.load_state_dict(plain.state_dict())
    factored.gamma = factored_gamma
    # a non-zero bias: its term (b_p times the sum of V) is computed apart
    with torch.no_grad():
        plain.fusion.bias.normal_()
        factored.fusion.bias.copy_(plain.fusion.bias)
    feats = {
        t: torch.randn(2, 8, *size, dtype=dtype, requires_grad=True)
        for t in names
    }
    up = (2 * size[0], 2 * size[1])  # conv_out upsamples x2
    weights = {t: torch.randn(2, 6, *up, dtype=dtype) for t in names}

    def run(module):
        out = module(feats)
        loss = sum((out[t] * weights[t]).sum() for t in names)
        grads = torch.autograd.grad(
            loss, list(module.parameters()) + list(feats.values())
        )
        return out, grads

    out_p, grads_p = run(plain)
    out_b, grads_b = run(factored)
    tol = 1e-10 if dtype == torch.float64 else 1e-4

    def assert_close(actual, expected):
        scale = max(1.0, expected.abs().max().item())
        torch.testing.assert_close(
            actual, expected, rtol=tol, atol=tol * scale
        )

    for t in names:
        assert_close(out_b[t], out_p[t])
    for gp, gb in zip(grads_p, grads_b):
        assert_close(gb, gp)
    with torch.no_grad():  # inference: the forward alone
        out_nograd = factored(feats)
    for t in names:
        assert_close(out_nograd[t], out_p[t])


def test_factored_normalises_zero_and_tiny_features_as_plain_does():
    # F.normalize clamps the norm at 1e-12: a zero feature vector stays zero
    # and its gradient is g / eps; the factored function normalises by hand
    torch.manual_seed(0)
    size = (4, 5)
    kwargs = dict(in_channels=4, channels=3, feature_size=size)
    plain = CrossTaskAffinityModule(['a', 'b'], **kwargs).double()
    factored = CrossTaskAffinityModule(
        ['a', 'b'], implementation='factored', **kwargs
    ).double()
    factored.load_state_dict(plain.state_dict())
    features = torch.randn(2, 2, 3, 20, dtype=torch.float64)
    features[0, 1, :, 7] = 0
    features[1, 0, :, 3] = 1e-14  # norm below the clamp
    values = torch.randn(2, 2, 3, 20, dtype=torch.float64)
    weight = torch.randn(2, 2, 3, 20, dtype=torch.float64)
    results = []
    for module in (plain, factored):
        f = features.clone().requires_grad_()
        v = values.clone().requires_grad_()
        out = module.attend(f, v)
        grads = torch.autograd.grad((out * weight).sum(), [f, v])
        results.append((out, *grads))
    for expected, actual in zip(*results):
        assert torch.isfinite(actual).all()
        scale = max(1.0, expected.abs().max().item())
        torch.testing.assert_close(
            actual, expected, rtol=1e-10, atol=1e-10 * scale
        )


def test_uncertainty_weights_are_trained_by_the_optimiser():
    tasks = {'semseg': ALL_KINDS['semseg'], 'depth': ALL_KINDS['depth']}
    cfg = _model_cfg(tasks=tasks)
    cfg.loss_weighting = dict(type='UncertaintyWeighting')
    model = MODELS.build(cfg)
    wrapper = build_optim_wrapper(
        model, dict(optimizer=dict(type='Adam', lr=0.1))
    )
    before = model.loss_weighting.log_vars.detach().clone()
    data = model.data_preprocessor(
        dict(
            inputs=[torch.rand(3, 32, 32) * 255 for _ in range(2)],
            data_samples=_samples(tasks, (32, 32)),
        ),
        True,
    )
    # the regulariser 0.5 * s_t is part of the total the optimiser sees
    # (mmengine sums only keys with 'loss' in their name: the model names
    # every term '<name>.loss')
    with torch.no_grad():
        model.loss_weighting.log_vars.fill_(1.0)
        losses = model(**data, mode='loss')
        total, _ = model.parse_losses(losses)
    assert {
        'semseg.uncertainty_reg.loss',
        'depth.uncertainty_reg.loss',
    } <= set(losses)
    torch.testing.assert_close(total, sum(losses.values()))
    model.loss_weighting.log_vars.data.copy_(before)
    model.train_step(data, wrapper)
    after = model.loss_weighting.log_vars.detach()
    assert not torch.equal(before, after)


def test_dwa_weights_follow_the_loss_ratios():
    weighting = MODELS.build(
        dict(type='DWAWeighting', tasks=['a', 'b'], window=1, temperature=1.0)
    )
    one = torch.tensor(1.0)
    weighting({('final', 'a'): one, ('final', 'b'): one}, {'a': 1.0, 'b': 1.0})
    weighting(
        {('final', 'a'): one * 2, ('final', 'b'): one}, {'a': 1.0, 'b': 1.0}
    )
    out = weighting(
        {('final', 'a'): one, ('final', 'b'): one}, {'a': 1.0, 'b': 1.0}
    )
    # task a's loss doubled: it gets the larger weight, and the weights sum to T
    assert out[('final', 'a')] > out[('final', 'b')]
    torch.testing.assert_close(
        out[('final', 'a')] + out[('final', 'b')], torch.tensor(2.0)
    )


def test_activation_checkpointing_trains_exactly_as_without():
    # with_cp recomputes the backbone + neck, the heads and the affinity
    # output convolutions in backward: the loss, every gradient and the BatchNorm running statistics
    # (which a plain torch.utils.checkpoint would update twice) must come out
    # as without it.
    from ctal_mm.testing import random_multitask_batch

    def one_step(with_cp):
        cfg = _model_cfg(implementation='factored')
        cfg.with_cp = cfg.decoder.with_cp = with_cp
        torch.manual_seed(0)
        model = MODELS.build(cfg).double().train()
        batch = random_multitask_batch(cfg.tasks, (32, 32), batch_size=2)
        data = model.data_preprocessor(batch, True)
        data['inputs'] = data['inputs'].double()
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        return loss.item(), grads, dict(model.named_buffers())

    loss, grads, buffers = one_step(False)
    loss_cp, grads_cp, buffers_cp = one_step(True)
    assert loss_cp == pytest.approx(loss, rel=1e-12)
    assert grads_cp.keys() == grads.keys()
    for name in grads:
        torch.testing.assert_close(grads_cp[name], grads[name], msg=name)
    tracked = [n for n in buffers if n.endswith('num_batches_tracked')]
    assert tracked and all(buffers[n].item() == 1 for n in tracked)
    for name in buffers:
        torch.testing.assert_close(buffers_cp[name], buffers[name], msg=name)
