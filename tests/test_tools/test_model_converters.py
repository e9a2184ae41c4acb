"""tools/model_converters: official CTAL checkpoints and torchvision Swin-V2
weights become ctal_mm checkpoints that load into our models."""

import os.path as osp
import subprocess
import sys

import torch
from mmengine.runner import load_checkpoint
from reference_checkpoints import read_listing, reference_state_dict

from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import MODELS
from ctal_mm.utils import register_all_modules

register_all_modules()
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTERS = osp.join(REPO, 'tools', 'model_converters')
NYUV2_CTAL = osp.join(
    REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py'
)
CITYSCAPES_CTAL = osp.join(
    REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-75e_cityscapes-128x256.py'
)


def _run(tool, *args):
    return subprocess.run(
        [sys.executable, osp.join(CONVERTERS, tool), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1', 'PATH': ''},
    )


def test_official_ctal_checkpoint_converts_and_loads(tmp_path):
    shapes, _ = read_listing('nyu', 'ctal')
    reference = reference_state_dict(shapes)
    # as the authors' training script may save it: wrapped, DataParallel
    src = tmp_path / 'official.pth'
    torch.save(
        {'model': {'module.' + k: v for k, v in reference.items()}}, src
    )
    dst = tmp_path / 'out' / 'ctal_mm.pth'
    proc = _run('ctal_official2mm.py', src, dst, '--config', NYUV2_CTAL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'all loaded' in proc.stdout

    model = MODELS.build(load_config(NYUV2_CTAL).model)
    load_checkpoint(model, str(dst), strict=True)  # through our safe loader
    ours = model.state_dict()
    pairs = {
        'affinity_learning_module.spatial_att.fusion.weight': (
            'decoder.affinity.fusion.weight'
        ),
        'backbone.0.stage4.1.fuse_layers.3.0.0.1.weight': (
            'backbone.stage4.1.fuse_layers.3.0.0.1.weight'
        ),
        'backbone.1.last_layer.0.weight': 'neck.fuse.conv.weight',
        'heads.normals.2.weight': 'decoder.final_heads.normals.conv_out.weight',
    }
    for theirs, mine in pairs.items():
        assert torch.equal(ours[mine], reference[theirs]), mine


def test_checkpoint_of_another_model_is_refused_with_the_reason(tmp_path):
    shapes, _ = read_listing('nyu', 'ctal')
    src = tmp_path / 'official.pth'
    torch.save(reference_state_dict(shapes), src)
    dst = tmp_path / 'ctal_mm.pth'
    # NYUv2 weights (3 tasks) into the Cityscapes model (2 tasks)
    proc = _run('ctal_official2mm.py', src, dst, '--config', CITYSCAPES_CTAL)
    assert proc.returncode != 0
    assert 'normals' in proc.stderr and 'same tasks' in proc.stderr
    # the same tasks, but 40 classes: the tensor at fault is named
    proc = _run(
        'ctal_official2mm.py',
        src,
        dst,
        '--config',
        NYUV2_CTAL,
        '--cfg-options',
        'model.tasks.semseg.channels=40',
    )
    assert proc.returncode != 0
    assert 'conv_out.semseg.weight' in proc.stderr
    assert '(13, 256, 1, 1)' in proc.stderr
    assert not dst.exists()


def test_pickled_objects_are_refused_unless_trusted(tmp_path):
    src = tmp_path / 'pickled.pth'
    torch.save({'model': {}, 'args': argparse_namespace()}, src)
    proc = _run(
        'ctal_official2mm.py', src, tmp_path / 'x.pth', '--config', NYUV2_CTAL
    )
    assert proc.returncode != 0
    assert '--trust-pickle' in proc.stderr


def argparse_namespace():
    import argparse

    return argparse.Namespace(lr=1e-4)


def test_torchvision_swin_weights_initialise_our_backbone(tmp_path):
    from torchvision.models.swin_transformer import (
        PatchMergingV2,
        SwinTransformer,
        SwinTransformerBlockV2,
    )

    torch.manual_seed(0)
    arch = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])
    torchvision_swin = SwinTransformer(
        patch_size=[4, 4],
        embed_dim=16,
        depths=arch['depths'],
        num_heads=arch['num_heads'],
        window_size=[8, 8],
        stochastic_depth_prob=0.0,
        block=SwinTransformerBlockV2,
        downsample_layer=PatchMergingV2,
        num_classes=10,
    )
    src, dst = tmp_path / 'swin_v2.pth', tmp_path / 'swin_v2_mm.pth'
    torch.save(torchvision_swin.state_dict(), src)
    proc = _run('torchvision_swinv2_to_mmpretrain.py', src, dst)
    assert proc.returncode == 0, proc.stderr[-3000:]

    backbone = MODELS.build(
        dict(
            type='mmpretrain.SwinTransformerV2',
            arch=dict(arch, extra_norm_every_n_blocks=0),
            img_size=256,
            window_size=[8, 8, 8, 8],
            out_indices=(3,),
            init_cfg=dict(
                type='Pretrained', checkpoint=str(dst), prefix='backbone.'
            ),
        )
    )
    backbone.init_weights()
    expected = torchvision_swin.features[6].reduction.weight
    actual = backbone.stages[3].downsample.reduction.weight
    # same values, patch-merging inputs reordered
    assert torch.equal(actual.sort(dim=1).values, expected.sort(dim=1).values)
    assert torch.equal(
        backbone.stages[0].blocks[0].attn.w_msa.q_bias,
        torchvision_swin.features[1][0].attn.qkv.bias[:16],
    )
