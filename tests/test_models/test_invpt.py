"""InvPT on ViT is the official model: parameter counts and state-dict keys
of the full-size configs equal the official code's, and a converted
random-init official state dict gives the official outputs.

The fixtures in mtt_fixtures/ were made by the official code
(prismformore/Multi-Task-Transformer, InvPT/, on timm 0.5.4), which the
suite cannot run (see mtt_fixtures/README.md): the gzipped listings of every
state-dict key and shape of its models built from its ymls (NYUD-MT at
448 x 576, PASCAL-Context at 512 x 512; parameter count in the first line),
and, for a reduced model (ViT 64-d, 4 blocks; decoder 32 + 16 channels; NYUD
tasks; input 128 x 192), the outputs of its random state dict (drawn by
reference_checkpoints.scaled_random_state_dict from the listing) on a seeded
input.
"""

import gzip
from pathlib import Path

import pytest
import torch
from reference_checkpoints import scaled_random_state_dict

from ctal_mm.engine.config_loading import load_config
from ctal_mm.model_converters.mtt_keys import convert_mtt_state_dict
from ctal_mm.registry import MODELS
from ctal_mm.testing import random_multitask_batch
from ctal_mm.utils import register_all_modules

register_all_modules()
REPO = Path(__file__).parents[2]
FIXTURES = Path(__file__).parent / 'mtt_fixtures'
CONFIGS = {
    'nyud-mt': REPO / 'configs/invpt/invpt_vitl16_1xb2-40k_nyud-mt-448x576.py',
    'pascal-context': REPO
    / 'configs/invpt/invpt_vitl16_1xb2-40k_pascal-context-512x512.py',
}
# the counts, measured by building the official models from their ymls
OFFICIAL_COUNTS = {'nyud-mt': 402_092_888, 'pascal-context': 422_929_810}
# the reduced model of the outputs fixture
TINY = dict(
    backbone=dict(
        arch=dict(embed_dims=64, depth=4, num_heads=2),
        img_size=(128, 192),
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0,
        init_cfg=None,
    ),
    decoder=dict(in_channels=64, embed_dims=32, pred_channels=16),
)


def read_fixture_listing(name):
    lines = gzip.decompress((FIXTURES / name).read_bytes()).decode()
    lines = lines.splitlines()
    shapes = {}
    for line in lines[1:]:
        key, *shape = line.split()
        shapes[key] = (
            tuple(int(s) for s in shape[0].split('x')) if shape else ()
        )
    return shapes, int(lines[0].split()[-1])


def tiny_invpt(**backbone):
    """The NYUD-MT config's model at the fixture's reduced size."""
    model = load_config(str(CONFIGS['nyud-mt'])).model
    model.backbone.update(TINY['backbone'], **backbone)
    model.decoder.update(TINY['decoder'])
    model.data_preprocessor.update(
        size=(128, 192), test_cfg=dict(size=(128, 192))
    )
    return MODELS.build(model)


@pytest.mark.parametrize('dataset', sorted(CONFIGS))
def test_full_size_counts_and_keys_equal_the_official(dataset):
    shapes, official_count = read_fixture_listing(f'sd_{dataset}_invpt.txt.gz')
    assert official_count == OFFICIAL_COUNTS[dataset]
    cfg = load_config(str(CONFIGS[dataset]))
    with torch.device('meta'):  # shapes only: no 1.6 GB of weights
        model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) == official_count
    official = {k: torch.empty(s, device='meta') for k, s in shapes.items()}
    converted = convert_mtt_state_dict(
        official, 'invpt', model.decoder.task_names
    )
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == ours


def test_converted_official_state_dict_gives_the_official_outputs():
    shapes, count = read_fixture_listing('sd_nyud-mt_invpt-tiny.txt.gz')
    model = tiny_invpt().eval()
    assert sum(p.numel() for p in model.parameters()) == count
    official = scaled_random_state_dict(shapes, seed=0)
    model.load_state_dict(
        convert_mtt_state_dict(official, 'invpt', model.decoder.task_names),
        strict=True,
    )
    expected = torch.load(
        FIXTURES / 'invpt-tiny_nyud-mt_outputs.pt', weights_only=True
    )
    x = torch.randn(1, 3, 128, 192, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outputs = model.decoder(model.backbone(x))
    assert len(expected) == 8  # final and intermediate, four tasks
    for key, value in expected.items():
        stage, task = key.split('.')
        torch.testing.assert_close(
            outputs[stage][task],
            value,
            rtol=1e-4,
            atol=1e-5 * value.abs().max(),
        )


def test_task_order_other_than_the_official_is_refused():
    official = {'multi_task_decoder.x.weight': torch.zeros(1)}
    with pytest.raises(ValueError, match="orders them.*'depth', 'normals'"):
        convert_mtt_state_dict(
            official, 'invpt', ['semseg', 'normals', 'depth', 'edge']
        )


def test_one_step_supervises_both_stages_with_the_task_weights():
    """InvPT's loss scheme: final and intermediate predictions, each task at
    its yml weight; every trained parameter gets a gradient, the modules the
    official forward never uses stay frozen."""
    model = tiny_invpt(with_cp=True)
    model.init_weights()
    tasks = list(model.tasks)
    data = model.data_preprocessor(
        random_multitask_batch(model.tasks, (128, 192)), True
    )
    losses = model(**data, mode='loss')
    assert set(losses) == {
        f'{stage}.{task}.loss'
        for stage in ('initial', 'final')
        for task in tasks
    }
    with torch.no_grad():
        initial = model.decode(data['inputs'])['initial']['normals']
        gt = torch.stack([s.gt('normals') for s in data['data_samples']])
        raw = model.losses['normals'](initial, gt)
    torch.testing.assert_close(losses['initial.normals.loss'], 10.0 * raw)
    sum(losses.values()).backward()
    frozen = {
        'decoder.scale_embed.2',
        'decoder.invpt.norm_mt',
        'decoder.invpt.redu_chan.0',
        'decoder.invpt.invpt_stages.0.blocks.0.attn.fuse_attn',
    }
    for name, p in model.named_parameters():
        if any(name.startswith(f + '.') for f in frozen):
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_vit_checkpointing_and_other_input_sizes():
    """Per-block activation checkpointing gives the same gradients; an input
    of another size resamples the position embeddings (the training scale's
    are used as they are)."""
    from ctal_mm.models.backbones import PatchViT

    torch.manual_seed(0)
    plain = PatchViT(
        arch=dict(embed_dims=32, depth=2, num_heads=2),
        img_size=(64, 96),
        out_indices=(0, 1),
    )
    plain.init_weights()
    checkpointed = PatchViT(
        arch=dict(embed_dims=32, depth=2, num_heads=2),
        img_size=(64, 96),
        out_indices=(0, 1),
        with_cp=True,
    )
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 96)
    grads = []
    for model in (plain, checkpointed):
        outs = model(x)
        assert [o.shape for o in outs] == [(2, 32, 4, 6)] * 2
        sum(o.square().mean() for o in outs).backward()
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        (out,) = plain(torch.randn(1, 3, 96, 64))[1:]
    assert out.shape == (1, 32, 6, 4)
