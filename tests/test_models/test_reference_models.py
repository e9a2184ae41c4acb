"""CTAL and every baseline: parameter counts and state-dict keys equal the
CTAL reference's, and reference checkpoints convert onto our models.

The reference listings (every state-dict key and shape of the authors' models,
parameter count in the first line) are in tests/test_models/reference_listings/ (gzipped).
PASCAL counts: the reference uses torchvision's swin_v2_s, we use mmpretrain's
SwinTransformerV2, which has 9,024 fewer parameters per backbone instance (the
key part of the qkv bias, which torchvision stores but zeroes in every forward).
"""

import math
import re
from pathlib import Path

import pytest
import torch
from reference_checkpoints import read_listing, reference_state_dict

import ctal_mm.models.single_task  # noqa: F401  (registers the STL model)
from ctal_mm.model_converters.reference_keys import (
    SWIN_RECOMPUTED_BUFFERS,
    convert_reference_state_dict,
    map_reference_key,
    reference_key_rules,
)
from ctal_mm.registry import MODELS
from ctal_mm.testing import base_model_config
from ctal_mm.utils import register_all_modules

register_all_modules()

CONFIGS = Path(__file__).parents[2] / 'configs' / '_base_' / 'models'
DATASETS = Path(__file__).parents[2] / 'configs' / '_base_' / 'datasets'
# mmpretrain's SwinTransformerV2 (small) against torchvision's swin_v2_s
SWIN_DIFFERENCE = 9_024

# Reference parameter counts (BN buffers excluded), from instantiating the authors' code.
REFERENCE_COUNTS = {
    ('ctal', 'nyu'): 6_057_216,
    ('ctal', 'cityscapes'): 5_262_854,
    ('ctal', 'pascal'): 62_179_134,
    ('hps', 'nyu'): 4_086_457,
    ('hps', 'cityscapes'): 4_013_560,
    ('hps', 'pascal'): 82_090_780,
    ('stl', 'nyu'): 11_807_897,
    ('stl', 'cityscapes'): 7_874_280,
    ('stl', 'pascal'): 277_964_548,
    ('padnet', 'nyu'): 12_077_440,
    ('padnet', 'cityscapes'): 7_008_262,
    ('padnet', 'pascal'): 88_540_478,
    ('papnet', 'nyu'): 4_780_425,
    ('papnet', 'cityscapes'): 4_501_770,
    ('papnet', 'pascal'): 60_360_663,
    ('mti_net', 'nyu'): 12_638_901,
    ('mti_net', 'cityscapes'): 8_566_734,
    ('m_ctal', 'nyu'): 11_149_783,
    ('m_ctal', 'cityscapes'): 8_474_086,
}
CONFIG_NAMES = {
    'ctal': 'ctal',
    'hps': 'hps',
    'stl': 'stl',
    'padnet': 'padnet',
    'papnet': 'papnet',
    'mti_net': 'mtinet',
    'm_ctal': 'mctal',
}
CITYSCAPES_TASKS = dict(
    semseg=dict(kind='segmentation', channels=19),
    depth=dict(kind='depth', channels=1, weight=10.0),
)
NOT_PARAMETERS = re.compile(
    r'running_mean|running_var|num_batches_tracked'
    r'|relative_coords_table|relative_position_index'
)


def build(model, dataset):
    tree = 'swinv2s' if dataset == 'pascal' else 'hrnet18s'
    cfg = base_model_config(
        CONFIGS / f'{CONFIG_NAMES[model]}_{tree}.py',
        DATASETS / ('pascal_context.py' if tree == 'swinv2s' else 'nyuv2.py'),
    )
    if dataset == 'cityscapes':
        cfg.tasks = CITYSCAPES_TASKS
        if model in ('ctal', 'm_ctal'):
            cfg.decoder.affinity.feature_size = (32, 64)  # 128x256 / 4
    return MODELS.build(cfg)


def num_parameters(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('model,dataset', sorted(REFERENCE_COUNTS))
def test_parameter_count_and_keys_equal_the_reference(model, dataset):
    shapes, header = read_listing(dataset, model)
    # the listing itself: parameters + Swin's relative-position buffers
    listed = sum(
        math.prod(s) for k, s in shapes.items() if not NOT_PARAMETERS.search(k)
    )
    assert listed == REFERENCE_COUNTS[model, dataset]
    assert header >= listed

    ours = build(model, dataset)
    swin_instances = 0
    if dataset == 'pascal':
        swin_instances = 5 if model == 'stl' else 1
    assert num_parameters(ours) == (
        REFERENCE_COUNTS[model, dataset] - swin_instances * SWIN_DIFFERENCE
    )

    # every reference key has its tensor in our model, shapes agreeing
    tree = 'transformer' if dataset == 'pascal' else 'cnn'
    if tree == 'transformer':
        # the Swin backbone is converted by convert_torchvision_swin_v2,
        # not by the renaming rules
        rules = reference_key_rules(model, tree)
        swin = [k for k in shapes if k.startswith('backbone')]
        assert all(map_reference_key(k, rules) is None for k in swin)
    target = ours.state_dict()
    converted, unmapped = convert_reference_state_dict(
        reference_state_dict(shapes), model, tree, target=target
    )
    assert unmapped == []
    missing, unexpected = ours.load_state_dict(converted, strict=False)
    assert unexpected == []
    if tree == 'cnn':
        assert missing == []
    else:  # only the buffers mmpretrain recomputes
        assert missing and all(
            SWIN_RECOMPUTED_BUFFERS.search(k) for k in missing
        )
    assert len(converted) == len(target) - len(missing)
    for key, value in converted.items():
        assert torch.equal(target[key].float(), value.float()), key


def test_torchvision_swin_v2_converts_to_the_same_function():
    """A (small) torchvision Swin-V2 and mmpretrain's, with converted
    weights, give the same features: the layouts are really equivalent."""
    from mmpretrain.models import SwinTransformerV2
    from torchvision.models.swin_transformer import (
        PatchMergingV2,
        SwinTransformer,
        SwinTransformerBlockV2,
    )

    from ctal_mm.model_converters.reference_keys import (
        convert_torchvision_swin_v2,
    )

    torch.manual_seed(0)
    depths, heads = [2, 2, 2, 2], [1, 2, 2, 4]
    torchvision_swin = SwinTransformer(
        patch_size=[4, 4],
        embed_dim=16,
        depths=depths,
        num_heads=heads,
        window_size=[8, 8],
        stochastic_depth_prob=0.0,
        block=SwinTransformerBlockV2,
        downsample_layer=PatchMergingV2,
    ).eval()
    for p in torchvision_swin.parameters():  # not the zero/one init
        p.data.normal_(0, 0.2)
    ours = SwinTransformerV2(
        arch=dict(
            embed_dims=16,
            depths=depths,
            num_heads=heads,
            extra_norm_every_n_blocks=0,
        ),
        img_size=256,
        window_size=[8, 8, 8, 8],
        out_indices=(3,),
    )
    ours.eval()
    converted, unknown = convert_torchvision_swin_v2(
        torchvision_swin.state_dict()
    )
    assert unknown == []
    missing, unexpected = ours.load_state_dict(converted, strict=False)
    assert unexpected == []
    assert all(SWIN_RECOMPUTED_BUFFERS.search(k) for k in missing)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        expected = torchvision_swin.norm(torchvision_swin.features(x))
        (actual,) = ours(x)
    torch.testing.assert_close(
        actual, expected.permute(0, 3, 1, 2), rtol=1e-4, atol=1e-5
    )
