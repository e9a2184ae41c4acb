"""A checkpoint named by URL (``https://``, ``torchvision://``, ``open-mmlab://``,
``mmcls://``) is read from torch hub's cache with the same allow-listed load as a local file:
a pickled payload is refused with the URL named and never runs, through ``load_from``,
tools/test.py and a backbone's ``init_cfg`` Pretrained. Offline: the files are put in the
cache, where a download would have left them."""

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from reliability_helpers import run_test, write_config

from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import MODELS
from ctal_mm.utils import UnsafeCheckpointError, register_all_modules
from ctal_mm.utils.checkpoint_integrity import CorruptCheckpointError

URL = 'https://h.invalid/x.pth'


class _Payload:
    """Unpickling this creates the file ``marker``: the code an attacker would run."""

    marker = None

    def __reduce__(self):
        return (open, (_Payload.marker, 'w'))


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / 'torch_home'
    (home / 'hub' / 'checkpoints').mkdir(parents=True)
    monkeypatch.setenv('TORCH_HOME', str(home))
    return home


def _cache(torch_home, name, obj):
    path = torch_home / 'hub' / 'checkpoints' / name
    torch.save(obj, path)
    return path


def _evil(torch_home, tmp_path, name='x.pth'):
    marker = tmp_path / 'payload_ran'
    _Payload.marker = str(marker)
    _cache(
        torch_home,
        name,
        {'state_dict': {'w': torch.zeros(1)}, 'meta': _Payload()},
    )
    return marker


def _build_model(cfg):
    with DefaultScope.overwrite_default_scope('ctal_mm'):
        return MODELS.build(cfg.model)


def _cfg(tmp_path, **extra):
    register_all_modules(init_default_scope=False)
    cfg = load_config(write_config(tmp_path / 'tiny.py', max_epochs=1))
    cfg.custom_hooks = []
    cfg.work_dir = str(tmp_path / 'work')
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.merge_from_dict(extra)
    return cfg


def test_every_scheme_is_replaced():
    register_all_modules(init_default_scope=False)
    for prefix, loader in CheckpointLoader._schemes.items():
        assert loader.__module__ == 'ctal_mm.utils.compat', prefix


@pytest.mark.parametrize(
    'name', [URL, 'torchvision://resnet18', 'mmcls://resnet50']
)
def test_url_schemes_refuse_a_pickled_payload(name, torch_home, tmp_path):
    register_all_modules(init_default_scope=False)
    if name == URL:
        cached = 'x.pth'
    else:  # the file the scheme's URL would be downloaded to
        from mmengine.runner import checkpoint as mmengine_checkpoint

        prefix, model = name.split('://')
        urls = (
            mmengine_checkpoint.get_torchvision_models()
            if prefix == 'torchvision'
            else mmengine_checkpoint.get_mmcls_models()
        )
        cached = urls[model].rsplit('/', 1)[-1]
    marker = _evil(torch_home, tmp_path, cached)
    # the schemes' files are named <name>-<sha256 prefix>.pth: the substitute fails
    # that check before it is unpickled
    error, match = (
        (UnsafeCheckpointError, 'arbitrary code')
        if name == URL
        else (CorruptCheckpointError, 'its name says its sha256 starts with')
    )
    with pytest.raises(error, match=match) as info:
        CheckpointLoader.load_checkpoint(name, map_location='cpu')
    assert name in str(info.value) and cached in str(info.value)
    assert not marker.exists()


def test_load_from_a_url_is_refused_and_the_payload_never_runs(
    torch_home, tmp_path
):
    marker = _evil(torch_home, tmp_path)
    runner = Runner.from_cfg(_cfg(tmp_path, load_from=URL))
    with pytest.raises(UnsafeCheckpointError, match=URL):
        runner.train()
    assert not marker.exists()


def test_backbone_pretrained_from_a_url_is_refused(torch_home, tmp_path):
    marker = _evil(torch_home, tmp_path)
    init_cfg = dict(type='Pretrained', checkpoint=URL)
    cfg = _cfg(tmp_path)
    cfg.model.backbone.init_cfg = init_cfg
    model = _build_model(cfg)
    with pytest.raises(UnsafeCheckpointError, match=URL):
        model.init_weights()
    assert not marker.exists()


def test_tools_test_refuses_a_url_and_loads_a_benign_one(torch_home, tmp_path):
    marker = _evil(torch_home, tmp_path)
    cfg = _cfg(tmp_path)
    config = tmp_path / 'tiny.py'
    proc = run_test(config, URL, tmp_path / 'test', TORCH_HOME=str(torch_home))
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert f"Refused to load checkpoint '{URL}'" in proc.stdout
    assert not marker.exists()

    model = _build_model(cfg)
    _cache(torch_home, 'good.pth', {'state_dict': model.state_dict()})
    proc = run_test(
        config,
        'https://h.invalid/good.pth',
        tmp_path / 'test',
        TORCH_HOME=str(torch_home),
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'depth/' in proc.stdout
