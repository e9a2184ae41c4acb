"""A checkpoint of another model stops tools/test.py, ``load_from`` and ``--resume`` with a
short message naming the first keys that do not fit, before a weight or an optimiser state is
copied; ``--non-strict`` / ``load_strict = False`` loads the keys that fit. At test time an
input size CTAL was not built for is fixed by resizing or padding the inputs."""

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from reliability_helpers import run_test, write_config

from ctal_mm.engine.config_checks import ConfigError
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import MODELS
from ctal_mm.utils import CheckpointMismatchError, register_all_modules


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


def _other_model_checkpoint(tmp_path, optimizer=False):
    """A checkpoint of the tiny model with narrower final heads and no normals task: the
    reshaped keys and missing keys of "another model or config"."""
    cfg = _cfg(tmp_path, **{'model.decoder.final_head.channels': 64})
    model = _build_model(cfg)
    state = {k: v for k, v in model.state_dict().items() if 'normals' not in k}
    checkpoint = dict(state_dict=state, meta=dict(epoch=1, iter=2))
    if optimizer:  # what a resumed run would reach only after the weights
        checkpoint['optimizer'] = torch.optim.SGD(
            model.parameters(), lr=0.1
        ).state_dict()
    path = tmp_path / 'other.pth'
    torch.save(checkpoint, path)
    return path


def _check_message(message):
    assert 'other.pth does not fit the model' in message
    assert 'keys of another shape' in message
    assert 'keys missing from the file' in message and 'normals' in message
    assert 'another model or config' in message
    assert '--non-strict' in message
    assert (
        'and ' in message and 'more' in message
    )  # the first few, not hundreds


def test_load_from_another_model_stops_before_training(tmp_path):
    path = _other_model_checkpoint(tmp_path)
    runner = Runner.from_cfg(_cfg(tmp_path, load_from=str(path)))
    with pytest.raises(CheckpointMismatchError) as info:
        runner.train()
    _check_message(str(info.value))
    assert runner.iter == 0


def test_resume_from_another_model_fails_at_the_weights(tmp_path):
    path = _other_model_checkpoint(tmp_path, optimizer=True)
    runner = Runner.from_cfg(_cfg(tmp_path, load_from=str(path), resume=True))
    with pytest.raises(CheckpointMismatchError) as info:
        runner.train()
    _check_message(str(info.value))


def test_non_strict_loads_the_keys_that_fit(tmp_path):
    path = _other_model_checkpoint(tmp_path)
    cfg = _cfg(tmp_path, load_from=str(path), load_strict=False)
    cfg.train_cfg.max_epochs = 0  # load, do not train
    runner = Runner.from_cfg(cfg)
    runner.train()
    saved = torch.load(path, weights_only=True)['state_dict']
    key = 'backbone.conv1.weight'
    assert torch.equal(runner.model.state_dict()[key], saved[key])


def test_tools_test_stops_on_another_model_unless_non_strict(tmp_path):
    path = _other_model_checkpoint(tmp_path)
    config = tmp_path / 'tiny.py'
    proc = run_test(config, path, tmp_path / 'test')
    assert proc.returncode != 0
    assert 'CheckpointMismatchError: ' in proc.stdout
    _check_message(proc.stdout)
    assert 'size mismatch' not in proc.stdout  # no per-key list from mmengine
    assert 'Traceback' not in proc.stdout
    proc = run_test(config, path, tmp_path / 'test', '--non-strict')
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'depth/' in proc.stdout


def test_test_time_input_size_advises_resizing_the_inputs(tmp_path):
    cfg = _cfg(tmp_path, **{'test_dataloader.dataset.img_size': (48, 48)})
    model = _build_model(cfg)
    path = tmp_path / 'good.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    cfg.load_from = str(path)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ConfigError) as info:
        runner.test()
    (problem,) = info.value.problems
    assert 'test_dataloader gives 48x48 inputs' in problem
    assert 'Resize or pad the inputs to 32x32' in problem
    assert 'Set model.decoder.affinity.feature_size' not in problem
