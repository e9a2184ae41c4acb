"""Baselines: loss and predict through MultiTaskEncoderDecoder on tiny inputs, and their parts."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import ctal_mm.models.single_task  # noqa: F401  (registers the STL model)
from ctal_mm.models.decoders.papnet import diffuse, pap_affinity
from ctal_mm.models.losses.loss_keys import ExtraTerm
from ctal_mm.registry import MODELS
from ctal_mm.testing import base_model_config, random_multitask_samples
from ctal_mm.utils import register_all_modules

register_all_modules()

CONFIGS = Path(__file__).parents[2] / 'configs' / '_base_' / 'models'
DATASETS = Path(__file__).parents[2] / 'configs' / '_base_' / 'datasets'
NYU_TASKS = ('semseg', 'depth', 'normals')
PASCAL_TASKS = ('semseg', 'normals', 'saliency', 'edge', 'human_parts')
# Stages each baseline supervises.
STAGES = {
    'hps': ('final',),
    'stl': ('final',),
    'padnet': ('initial', 'final'),
    'papnet': ('initial', 'final'),
    'mtinet': ('scale_0', 'scale_1', 'scale_2', 'scale_3', 'final'),
    'mctal': ('scale_0', 'scale_1', 'scale_2', 'scale_3', 'final'),
}
# A Swin-V2 small enough for a CPU test: 64x64 -> 2x2 maps of 8 * 16 channels.
TINY_SWIN = dict(
    arch=dict(
        embed_dims=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        extra_norm_every_n_blocks=0,
    ),
    img_size=64,
    window_size=[2, 2, 2, 2],
)
TINY_SWIN_CHANNELS = 128


def load(name, tree):
    dataset = 'pascal_context' if tree == 'swinv2s' else 'nyuv2'
    return base_model_config(
        CONFIGS / f'{name}_{tree}.py', DATASETS / f'{dataset}.py'
    )


samples_for = random_multitask_samples


def train_and_predict(cfg, size):
    """One loss + backward, then predict; returns (model, losses, preds)."""
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    tasks = model.tasks
    inputs = [torch.rand(3, *size) * 255 for _ in range(2)]
    samples = samples_for(tasks, size)
    data = model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), True
    )
    losses = model(**data, mode='loss')
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    data = model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), False
    )
    with torch.no_grad():
        preds = model(**data, mode='predict')
    return model, losses, preds


def check_predictions(preds, tasks, size):
    for name, spec in tasks.items():
        pred = preds[0].pred(name)
        assert pred.shape[-2:] == size
        if spec['kind'] == 'segmentation':
            assert pred.dtype == torch.int64
            assert 0 <= pred.min() and pred.max() < spec['channels']
        elif spec['kind'] == 'normals':
            torch.testing.assert_close(pred.norm(dim=0), torch.ones(size))
        elif spec['kind'] in ('edge', 'saliency'):
            assert pred.shape[0] == 1
            assert 0 <= pred.min() and pred.max() <= 1


def check_every_decoder_parameter_trains(model):
    idle = [
        name
        for name, p in model.decoder.named_parameters()
        if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert idle == []


@pytest.mark.parametrize('name', sorted(STAGES))
def test_hrnet_baselines_train_and_predict(name):
    cfg = load(name, 'hrnet18s')
    if name == 'mctal':
        cfg.decoder.affinity.feature_size = (8, 8)  # 32x32 / 4
    model, losses, preds = train_and_predict(cfg, (32, 32))
    assert set(losses) == {
        f'{stage}.{task}.loss' for stage in STAGES[name] for task in NYU_TASKS
    }
    check_every_decoder_parameter_trains(model)
    check_predictions(preds, model.tasks, (32, 32))


@pytest.mark.parametrize('name', ['hps', 'stl', 'padnet', 'papnet'])
def test_swin_baselines_train_and_predict(name):
    cfg = load(name, 'swinv2s')
    cfg.backbone.update(TINY_SWIN)
    cfg.data_preprocessor.size = (64, 64)
    cfg.data_preprocessor.test_cfg.size = (64, 64)
    if name in ('hps', 'stl'):
        cfg.decoder.head.in_channels = TINY_SWIN_CHANNELS
    else:
        cfg.decoder.in_channels = TINY_SWIN_CHANNELS
    model, losses, preds = train_and_predict(cfg, (64, 64))
    assert list(model.tasks) == list(PASCAL_TASKS)
    assert set(losses) == {
        f'{stage}.{task}.loss'
        for stage in STAGES[name]
        for task in PASCAL_TASKS
    }
    check_every_decoder_parameter_trains(model)
    check_predictions(preds, model.tasks, (64, 64))


def test_stl_networks_share_nothing():
    model = MODELS.build(load('stl', 'hrnet18s'))
    depth_loss = model.loss(
        torch.rand(2, 3, 32, 32),
        samples_for(model.tasks, (32, 32)),
    )['final.depth.loss']
    depth_loss.backward()
    for task in NYU_TASKS:
        params = list(model.backbone.backbones[task].parameters()) + list(
            model.decoder.heads[task].parameters()
        )
        touched = any(p.grad is not None for p in params)
        assert touched == (task == 'depth'), task


def test_multi_scale_stages_are_averaged():
    cfg = load('mtinet', 'hrnet18s')
    model = MODELS.build(cfg)
    raw = {
        (stage, 'depth'): torch.tensor(2.0)
        for stage in ('scale_0', 'scale_3', 'final')
    }
    weighted = model.loss_weighting(raw, {'depth': 10.0})
    assert weighted['scale_0', 'depth'] == weighted['scale_3', 'depth'] == 5.0
    assert weighted['final', 'depth'] == 20.0
    # any base strategy: uncertainty weights see the scaled losses
    cfg.loss_weighting.base = dict(type='UncertaintyWeighting')
    uncertainty = MODELS.build(cfg).loss_weighting
    out = uncertainty(raw, {'depth': 1.0})
    assert out['scale_0', 'depth'] == 0.5 and out['final', 'depth'] == 2.0
    assert ExtraTerm('uncertainty_reg', 'depth') in out


def test_single_map_decoders_name_the_fix_for_multi_scale_inputs():
    cfg = load('padnet', 'hrnet18s')
    cfg.neck = None
    model = MODELS.build(cfg).eval()
    with pytest.raises(ValueError, match=r'received 4.*HRNetFuseNeck'):
        model.decode(torch.rand(1, 3, 32, 32))


def test_pap_affinity_is_cosine_similarity_normalised_over_rows():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 5, 3, 4, generator=g) + 0.1
    affinity = pap_affinity(x)
    flat = x.flatten(2)
    cosine = F.cosine_similarity(
        flat.unsqueeze(3), flat.unsqueeze(2), dim=1
    )  # B x N x N
    expected = cosine / cosine.sum(dim=2, keepdim=True)
    torch.testing.assert_close(affinity, expected)
    torch.testing.assert_close(affinity.sum(dim=2), torch.ones(2, 12))
    # a pixel's feature length does not matter, only its direction
    scale = torch.rand(2, 1, 3, 4, generator=g) + 0.5
    torch.testing.assert_close(pap_affinity(x * scale), affinity)


def test_pap_reference_affinity_normalises_channels_over_pixels():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 5, 3, 4, generator=g) + 0.1
    reference = pap_affinity(x, reference=True)
    # columns sum to one, and each channel's overall scale does not matter
    torch.testing.assert_close(reference.sum(dim=1), torch.ones(2, 12))
    scale = torch.rand(2, 5, 1, 1, generator=g) + 0.5
    torch.testing.assert_close(pap_affinity(x * scale, True), reference)
    assert not torch.allclose(reference, pap_affinity(x))


def test_papnet_reference_switch_changes_the_function_not_the_parameters():
    cfg = load('papnet', 'hrnet18s')
    assert cfg.decoder.reference_affinity  # the shipped default
    reference = MODELS.build(cfg).eval()
    cfg.decoder.reference_affinity = False
    default = MODELS.build(cfg).eval()
    reference.load_state_dict(default.state_dict())
    # make diffusion dominate so that the affinity really shows in the output
    for model in (default, reference):
        model.decoder.diffusion.beta = 0.9
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a = default.decode(x)
        b = reference.decode(x)
    torch.testing.assert_close(a['initial']['depth'], b['initial']['depth'])
    assert not torch.allclose(a['final']['depth'], b['final']['depth'])


def test_diffusion_follows_its_recurrence():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 3, 3, generator=g)
    affinity = torch.rand(2, 9, 9, generator=g)
    beta, steps = 0.3, 3
    per_pixel = x.flatten(2).transpose(1, 2)  # B x N x C
    d = per_pixel
    for _ in range(steps):
        d = beta * affinity @ d + (1 - beta) * per_pixel
    expected = d.transpose(1, 2).reshape_as(x)
    torch.testing.assert_close(diffuse(x, affinity, beta, steps), expected)
    identity = torch.eye(9).expand(2, 9, 9)
    torch.testing.assert_close(diffuse(x, identity, beta, steps), x)


@pytest.mark.parametrize('decoder', ['PADNetDecoder', 'PAPNetDecoder'])
def test_two_stage_decoders_checkpoint_their_heads_exactly(decoder):
    tasks = dict(semseg=dict(channels=3), depth=dict(channels=1))
    heads = dict(
        initial_head=dict(type='BottleneckTaskHead', num_blocks=1),
        final_head=dict(type='BottleneckTaskHead', num_blocks=1),
    )
    cfg = dict(type=decoder, tasks=tasks, in_channels=8, channels=16, **heads)
    if decoder == 'PAPNetDecoder':
        cfg['affinity_channels'] = 8
    torch.manual_seed(0)
    plain = MODELS.build(cfg).double()
    checkpointed = MODELS.build(dict(cfg, with_cp=True)).double()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.rand(2, 8, 6, 5, dtype=torch.float64)
    results = []
    for model in (plain, checkpointed):
        outputs = model(x)
        assert set(outputs) == {'initial', 'final'}
        total = sum(
            v.square().sum() for s in outputs.values() for v in s.values()
        )
        total.backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        results.append((total.detach(), grads, model.state_dict()))
    (loss, grads, buffers), (loss_cp, grads_cp, buffers_cp) = results
    torch.testing.assert_close(loss_cp, loss)
    for name in grads:
        torch.testing.assert_close(grads_cp[name], grads[name], msg=name)
    for name in buffers:
        torch.testing.assert_close(buffers_cp[name], buffers[name], msg=name)
