"""ImageNet backbones: the HRNet converter fills every key from timm's and
the official layouts, and a config's backbone init loads a file completely
or stops the run naming what is wrong."""

import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from reference_checkpoints import read_listing, reference_state_dict

from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import MODELS
from ctal_mm.utils import CheckpointMismatchError, register_all_modules

register_all_modules()
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTERS = osp.join(REPO, 'tools', 'model_converters')
HRNET_BASE = osp.join(REPO, 'configs', '_base_', 'models', 'ctal_hrnet18s.py')
NYUV2_CTAL = osp.join(
    REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py'
)


def _convert(*args):
    return subprocess.run(
        [
            sys.executable,
            osp.join(CONVERTERS, 'hrnet2mmseg.py'),
            *map(str, args),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1', 'PATH': ''},
    )


def _our_backbone():
    cfg = load_config(HRNET_BASE)
    return MODELS.build(dict(cfg.model.backbone, init_cfg=None))


def _converted(path):
    from ctal_mm.utils import safe_torch_load

    return safe_torch_load(str(path))['state_dict']


def _assert_fills_ours(converted, source):
    ours = _our_backbone().state_dict()
    assert set(converted) == {'backbone.' + k for k in ours}
    for key, value in ours.items():
        assert converted['backbone.' + key].shape == value.shape, key
        if key in source and 'num_batches_tracked' not in key:
            torch.testing.assert_close(
                converted['backbone.' + key], source[key]
            )


def test_timm_weights_fill_every_key(tmp_path):
    timm = pytest.importorskip('timm')
    model = timm.create_model('hrnet_w18_small_v2', pretrained=False)
    source = model.state_dict()
    assert any(k.startswith('classifier.') for k in source)
    from safetensors.torch import save_file

    src = tmp_path / 'model.safetensors'
    save_file({k: v.contiguous() for k, v in source.items()}, str(src))
    dst = tmp_path / 'hrnet.pth'
    proc = _convert(src, dst)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'ImageNet classifier' in proc.stdout
    _assert_fills_ours(_converted(dst), source)


def test_official_layout_fills_every_key(tmp_path):
    """The official naming, as the reference's checkpoints hold it (bare,
    as hrnet_w18_small_model_v2.pth; no num_batches_tracked, as files saved
    by old PyTorch), and its STL checkpoint's per-task backbones."""
    shapes, _ = read_listing('nyu', 'hps')
    reference = reference_state_dict(shapes)
    bare = {
        k[len('backbone.') :]: v
        for k, v in reference.items()
        if k.startswith('backbone.') and 'num_batches_tracked' not in k
    }
    bare['classifier.weight'] = torch.zeros(1000, 2048)
    src = tmp_path / 'hrnet_w18_small_model_v2.pth'
    torch.save(
        {'state_dict': {'module.' + k: v for k, v in bare.items()}}, src
    )
    dst = tmp_path / 'hrnet.pth'
    proc = _convert(src, dst)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'num_batches_tracked filled with 0' in proc.stdout
    _assert_fills_ours(_converted(dst), bare)

    stl_shapes, _ = read_listing('nyu', 'stl')
    stl = reference_state_dict(stl_shapes)
    src = tmp_path / 'stl.pth'
    torch.save(stl, src)
    proc = _convert(src, dst, '--task', 'depth')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'the depth backbone' in proc.stdout
    depth = {
        k[len('backbones.depth.') :]: v
        for k, v in stl.items()
        if k.startswith('backbones.depth.')
    }
    _assert_fills_ours(_converted(dst), depth)


def test_converter_names_a_missing_key(tmp_path):
    source = {
        k: v
        for k, v in _our_backbone().state_dict().items()
        if k != 'stage4.1.fuse_layers.3.0.0.1.weight'
    }
    src = tmp_path / 'partial.pth'
    torch.save(source, src)
    proc = _convert(src, tmp_path / 'out.pth')
    assert proc.returncode != 0
    assert 'stage4.1.fuse_layers.3.0.0.1.weight' in proc.stderr
    assert not (tmp_path / 'out.pth').exists()


def _nyuv2_ctal(checkpoint):
    cfg = load_config(NYUV2_CTAL)
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    return MODELS.build(cfg.model)


def test_config_init_loads_every_backbone_tensor(tmp_path):
    source = _our_backbone().state_dict()
    g = torch.Generator().manual_seed(0)
    source = {
        k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v
        for k, v in source.items()
    }
    path = tmp_path / 'hrnet.pth'
    torch.save(
        {'state_dict': {'backbone.' + k: v for k, v in source.items()}}, path
    )
    model = _nyuv2_ctal(path)
    model.init_weights()
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, source[key])


def test_a_file_missing_one_key_stops_the_init_naming_it(tmp_path):
    source = _our_backbone().state_dict()
    del source['layer1.0.bn2.running_var']
    path = tmp_path / 'hrnet.pth'
    torch.save(
        {'state_dict': {'backbone.' + k: v for k, v in source.items()}}, path
    )
    model = _nyuv2_ctal(path)
    with pytest.raises(
        CheckpointMismatchError, match='layer1.0.bn2.running_var'
    ):
        model.init_weights()


def test_a_missing_file_says_where_the_weights_come_from(tmp_path):
    model = _nyuv2_ctal(tmp_path / 'absent.pth')
    with pytest.raises(FileNotFoundError) as err:
        model.init_weights()
    message = str(err.value)
    assert 'hrnet2mmseg.py' in message and 'timm' in message
    assert 'model.backbone.init_cfg=None' in message


def test_every_real_dataset_config_starts_from_imagenet():
    configs = sorted(
        osp.join(REPO, 'configs', sub, name)
        for sub in ('ctal', 'baselines', 'nyud_mt')
        for name in os.listdir(osp.join(REPO, 'configs', sub))
        if name.endswith('.py')
    )
    assert len(configs) > 20
    for path in configs:
        cfg = load_config(path)
        init = cfg.model.backbone.get('init_cfg')
        if 'synthetic' in path:
            assert init is None, path  # the demo trains from scratch
            continue
        assert init is not None and init['type'] == 'VerifiedPretrained', path
        assert init['checkpoint'].startswith('checkpoints/'), path


def test_swin_file_from_the_converter_loads_completely(tmp_path):
    torchvision = pytest.importorskip('torchvision')
    src = tmp_path / 'swin_v2_s.pth'
    torch.save(torchvision.models.swin_v2_s().state_dict(), src)
    dst = tmp_path / 'swin.pth'
    proc = subprocess.run(
        [
            sys.executable,
            osp.join(CONVERTERS, 'torchvision_swinv2_to_mmpretrain.py'),
            str(src),
            str(dst),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1', 'PATH': ''},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = load_config(
        osp.join(REPO, 'configs', '_base_', 'models', 'hps_swinv2s.py')
    )
    backbone_cfg = dict(cfg.model.backbone)
    backbone_cfg['init_cfg'] = dict(
        backbone_cfg['init_cfg'], checkpoint=str(dst)
    )
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    converted = _converted(dst)
    for key, value in backbone.state_dict().items():
        if 'backbone.' + key in converted:
            torch.testing.assert_close(value, converted['backbone.' + key])
