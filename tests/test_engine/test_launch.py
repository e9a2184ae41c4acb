"""Command-line choices turned into config: --amp on CPU/GPU, CPU distributed set-up."""

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from ctal_mm.engine.launch import enable_amp, setup_cpu_distributed
from ctal_mm.utils import register_all_modules


def _cfg(**optim_wrapper):
    wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    wrapper.update(optim_wrapper)
    return Config(
        dict(
            optim_wrapper=wrapper, env_cfg=dict(dist_cfg=dict(backend='nccl'))
        )
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU choice')
def test_amp_on_cpu_autocasts_in_bfloat16():
    register_all_modules()
    cfg = _cfg()
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    model = nn.Linear(4, 2)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    x = torch.randn(3, 4)
    with wrapper.optim_context(model):
        y = model(x)
    assert y.dtype == torch.bfloat16
    # outside the context the model runs in float32, and bf16 agrees with it to bf16 precision
    reference = model(x)
    assert reference.dtype == torch.float32
    torch.testing.assert_close(y.float(), reference, rtol=2e-2, atol=2e-2)
    loss = y.float().pow(2).mean()
    before = model.weight.detach().clone()
    wrapper.update_params(loss)
    assert not torch.equal(before, model.weight)


def test_amp_refuses_a_custom_wrapper_with_the_reason():
    cfg = _cfg(type='MyWrapper')
    with pytest.raises(ValueError, match='MyWrapper'):
        enable_amp(cfg)


def test_amp_keeps_an_already_mixed_precision_config():
    cfg = _cfg(type='AutocastOptimWrapper')
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'


def test_autocast_wrapper_rejects_unknown_dtype():
    register_all_modules()
    with pytest.raises(ValueError, match="'float64'"):
        build_optim_wrapper(
            nn.Linear(2, 2),
            dict(
                type='AutocastOptimWrapper',
                dtype='float64',
                optimizer=dict(type='SGD', lr=0.1),
            ),
        )


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU path')
def test_cpu_distributed_without_torchrun_env_says_how_to_launch(monkeypatch):
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    cfg = _cfg()
    cfg.launcher = 'pytorch'
    with pytest.raises(RuntimeError, match='dist_train.sh'):
        setup_cpu_distributed(cfg)


def test_no_launcher_changes_nothing():
    cfg = _cfg()
    cfg.launcher = 'none'
    setup_cpu_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'


def test_default_hooks_set_to_none_are_dropped_for_the_runner():
    from ctal_mm.engine.launch import drop_disabled_hooks

    cfg = Config(
        dict(
            default_hooks=dict(checkpoint=None, non_finite=None, logger=dict())
        )
    )
    drop_disabled_hooks(cfg)
    # mmengine's own names may stay None (it removes them); others must go
    assert dict(cfg.default_hooks) == dict(checkpoint=None, logger=dict())
