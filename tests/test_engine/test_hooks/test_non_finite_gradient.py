"""A NaN gradient of a finite loss is caught before the optimizer step, named by step and
task, with the last good checkpoint; in skip mode the step is dropped. No checkpoint is
written holding NaN, so rotation never deletes the last good one, and metrics refuse NaN
predictions with a message."""

import math

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from reliability_helpers import state_dict, write_config

from ctal_mm.engine.checkpoint_files import is_complete_checkpoint
from ctal_mm.engine.config_loading import load_config
from ctal_mm.engine.hooks import (
    NonFiniteCheckpointError,
    NonFiniteGradientError,
)
from ctal_mm.engine.hooks.non_finite_loss_hook import SKIPPED_INFO
from ctal_mm.evaluation import DepthMetric, NormalsMetric
from ctal_mm.structures import MultiTaskDataSample
from ctal_mm.utils import register_all_modules

BAD_ITER = 1  # the last iteration of epoch 1 (2 iterations an epoch)
PARAM = 'decoder.final_heads.depth'  # a layer only the depth task has


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Snapshots(Hook):
    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == BAD_ITER:
            self.before = _weights(runner.model)

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        if runner.iter == BAD_ITER:
            self.after = _weights(runner.model)


def _runner(tmp_path, on_non_finite='stop', max_epochs=2, **extra):
    """A tiny run whose depth head gets a NaN gradient (its loss is finite) in BAD_ITER."""
    register_all_modules(init_default_scope=False)
    cfg = load_config(
        write_config(tmp_path / 'tiny.py', max_epochs=max_epochs)
    )
    cfg.custom_hooks = []
    cfg.default_hooks.non_finite.on_non_finite = on_non_finite
    cfg.work_dir = str(tmp_path / 'work')
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.merge_from_dict(extra)
    runner = Runner.from_cfg(cfg)
    params = [
        p for n, p in runner.model.named_parameters() if n.startswith(PARAM)
    ]

    def poison(grad):
        return grad * math.nan if runner.iter == BAD_ITER else grad

    params[0].register_hook(poison)
    snapshots = Snapshots()
    runner.register_hook(snapshots)
    return runner, snapshots


@pytest.mark.parametrize('clip', [False, True])
def test_stops_before_the_step_naming_step_task_and_checkpoint(
    tmp_path, monkeypatch, clip
):
    extra = {}
    if clip:  # the clipping's norm is reused: no norm of our own is computed
        extra = {'optim_wrapper.clip_grad': dict(max_norm=1.0)}

        def not_called(*args, **kwargs):
            raise AssertionError('the gradient norm was computed twice')

        monkeypatch.setattr(torch.nn.utils, 'get_total_norm', not_called)
    runner, snapshots = _runner(tmp_path, **extra)
    with pytest.raises(NonFiniteGradientError) as info:
        runner.train()
    message = str(info.value)
    assert (
        'Non-finite gradient at iteration 2 (epoch 1) of a finite loss'
        in message
    )
    assert f'{PARAM}.' in message
    assert 'The tasks whose own layers have one: depth.' in message
    assert 'last good checkpoint is (none saved yet)' in message
    for key, value in runner.model.named_parameters():
        assert torch.equal(value, snapshots.before[key]), key
    # the epoch's checkpoint was never written with NaN weights
    assert not (tmp_path / 'work' / 'epoch_1.pth').exists()


def test_skip_mode_drops_the_step_and_keeps_good_checkpoints(tmp_path):
    runner, snapshots = _runner(tmp_path, on_non_finite='skip')
    runner.train()
    assert runner.iter == 4
    assert runner.message_hub.get_info(SKIPPED_INFO) == 1
    for key, value in snapshots.after.items():
        assert torch.equal(value, snapshots.before[key]), key
    for name in ('epoch_1.pth', 'epoch_2.pth'):
        path = tmp_path / 'work' / name
        if path.exists():
            for key, value in state_dict(path).items():
                assert torch.isfinite(value.float()).all(), (name, key)
    assert is_complete_checkpoint(str(tmp_path / 'work' / 'epoch_2.pth'))


class Diverge(Hook):
    """NaN in a BatchNorm statistic and in Adam's state after epoch 1 was saved: a
    divergence neither the loss nor the gradient check sees."""

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        if runner.iter == 2:
            model = runner.model
            bn = next(
                m
                for m in model.modules()
                if isinstance(m, torch.nn.BatchNorm2d)
            )
            bn.running_var.fill_(math.nan)
            state = next(iter(runner.optim_wrapper.optimizer.state.values()))
            state['exp_avg_sq'].fill_(math.inf)


def test_a_non_finite_model_is_never_saved_nor_rotates_the_good_one(
    tmp_path,
):
    register_all_modules(init_default_scope=False)
    cfg = load_config(write_config(tmp_path / 'tiny.py', max_epochs=2))
    cfg.custom_hooks = []
    cfg.default_hooks.non_finite.on_non_finite = 'skip'
    cfg.work_dir = str(tmp_path / 'work')
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    runner = Runner.from_cfg(cfg)  # max_keep_ckpts=1
    runner.register_hook(Diverge(), priority='VERY_LOW')
    with pytest.raises(NonFiniteCheckpointError) as info:
        runner.train()
    message = str(info.value)
    work = tmp_path / 'work'
    assert message.startswith('Refused to save epoch_2.pth: ')
    assert 'running_var' in message and 'optimizer: state.' in message
    assert (
        f'The last good checkpoint is {work / "epoch_1.pth"}; it is kept'
        in (message)
    )
    assert is_complete_checkpoint(str(work / 'epoch_1.pth'))
    assert not (work / 'epoch_2.pth').exists()
    assert (work / 'last_checkpoint').read_text().endswith('epoch_1.pth')


def _samples(task, gt, pred):
    sample = MultiTaskDataSample(metainfo=dict(img_path='scene_7.png'))
    sample.set_gt(task, torch.as_tensor(gt))
    sample.set_pred(task, torch.as_tensor(pred))
    return [sample.to_dict()]


@pytest.mark.parametrize('metric', [NormalsMetric, DepthMetric])
def test_metrics_refuse_non_finite_predictions(metric):
    channels = 3 if metric is NormalsMetric else 1
    task = 'normals' if metric is NormalsMetric else 'depth'
    gt = np.ones((channels, 4, 5), np.float32)
    pred = gt.copy()
    pred[:, 1, 2] = np.nan
    with pytest.raises(ValueError) as info:
        metric().process(None, _samples(task, gt, pred))
    message = str(info.value)
    assert f'pred_{task} of scene_7.png has {channels} non-finite' in message
    assert 'earlier checkpoint' in message
