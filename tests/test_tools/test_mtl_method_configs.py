"""Every config in configs/mtl_methods/ trains one iteration on the small NYUv2 fixture."""

import glob
import os.path as osp

import pytest
import torch
from repo_scripts import REPO, load_script

from ctal_mm.engine.config_loading import load_config
from ctal_mm.utils import register_all_modules

CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'mtl_methods', '*.py')))
configs_test = load_script('tests/test_tools/test_configs.py')
data_roots = configs_test.data_roots  # the module-scoped fixture


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS]
)
def test_mtl_method_config_trains_one_iteration(path, data_roots, tmp_path):
    register_all_modules(init_default_scope=False)
    cfg = load_config(path)
    configs_test._point_at(cfg, data_roots)
    cfg.val_dataloader.dataset.indices = 1  # training is what is tested
    if 'affinity' in cfg.model.decoder:
        cfg.model.decoder.affinity.feature_size = (16, 16)  # 64x64 fixture
    cfg.train_cfg.update(max_epochs=1, val_interval=10)
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 10
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    model = runner.model
    before = {
        n: p.detach().clone() for n, p in model.backbone.named_parameters()
    }
    runner.train()
    assert runner.iter == 1
    assert type(runner.optim_wrapper).__name__ == 'JacobianOptimWrapper'
    assert type(model.jacobian_descent.aggregator).__name__ == (
        cfg.model.aggregator.type
    )
    changed = [
        n
        for n, p in model.backbone.named_parameters()
        if not torch.equal(p, before[n])
    ]
    assert changed  # the aggregated gradient reached the shared parameters
    for p in model.parameters():
        assert torch.isfinite(p).all()
