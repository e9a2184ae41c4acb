"""A non-finite loss stops training with the task and term named, before the step; or, with
``on_non_finite='skip'``, the step is skipped, counted and logged."""

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from reliability_helpers import write_config

from ctal_mm.engine.checkpoint_files import is_complete_checkpoint
from ctal_mm.engine.config_loading import load_config
from ctal_mm.engine.hooks import NonFiniteLossError, NonFiniteLossHook
from ctal_mm.engine.hooks.non_finite_loss_hook import SKIPPED_INFO
from ctal_mm.utils import register_all_modules

BAD_ITER = 2  # the first iteration of epoch 2 (2 iterations an epoch)


class Snapshots(Hook):
    """Copies of the weights before and after iteration BAD_ITER."""

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == BAD_ITER:
            self.before = _weights(runner.model)

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        if runner.iter == BAD_ITER:
            self.after = _weights(runner.model)
            self.adam_steps = _adam_steps(runner.optim_wrapper.optimizer)


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _adam_steps(optimizer):
    return {int(s['step']) for s in optimizer.state.values() if 'step' in s}


def _runner(tmp_path, head, on_non_finite='stop'):
    """A tiny run whose ``head`` (e.g. decoder.final_heads.depth) outputs NaN in BAD_ITER."""
    register_all_modules(init_default_scope=False)
    cfg = load_config(write_config(tmp_path / 'tiny.py', max_epochs=2))
    cfg.custom_hooks = []
    cfg.default_hooks.non_finite.on_non_finite = on_non_finite
    cfg.work_dir = str(tmp_path / 'work')
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    runner = Runner.from_cfg(cfg)

    def poison(module, args, output):
        if module.training and runner.iter == BAD_ITER:
            if isinstance(output, tuple):  # initial heads: (features, logits)
                return output[:-1] + (output[-1] * float('nan'),)
            return output * float('nan')

    runner.model.get_submodule(head).register_forward_hook(poison)
    snapshots = Snapshots()
    runner.register_hook(snapshots)
    return runner, snapshots


def test_stops_naming_the_task_and_term_and_keeps_the_checkpoint(tmp_path):
    runner, snapshots = _runner(tmp_path, 'decoder.final_heads.depth')
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    assert 'iteration 3 (epoch 2)' in message
    assert "final.depth.loss (task 'depth', final loss) = nan" in message
    assert 'initial.depth.loss' not in message  # the initial term was finite
    assert 'epoch_1.pth' in message and "on_non_finite='skip'" in message
    # stopped before the step: the weights are those of the last good step
    for key, value in runner.model.named_parameters():
        assert torch.equal(value, snapshots.before[key]), key
    ckpt = tmp_path / 'work' / 'epoch_1.pth'
    assert is_complete_checkpoint(str(ckpt))
    assert not (tmp_path / 'work' / 'epoch_2.pth').exists()


def test_an_initial_term_is_named_too(tmp_path):
    runner, _ = _runner(tmp_path, 'decoder.initial_heads.semseg')
    with pytest.raises(
        NonFiniteLossError, match='initial.semseg.loss'
    ) as info:
        runner.train()
    # the final stage sees the NaN through CTAL's affinity: named as well
    assert "(task 'semseg', initial loss) = nan" in str(info.value)


def test_skip_mode_skips_counts_and_logs(tmp_path, capsys):
    runner, snapshots = _runner(
        tmp_path, 'decoder.final_heads.depth', on_non_finite='skip'
    )
    runner.train()
    assert runner.iter == 4  # training went on
    assert runner.message_hub.get_info(SKIPPED_INFO) == 1
    # the step changed nothing, BatchNorm statistics included
    for key, value in snapshots.after.items():
        assert torch.equal(value, snapshots.before[key]), key
    assert snapshots.adam_steps == {
        BAD_ITER
    }  # Adam's state did not advance either
    for value in _weights(runner.model).values():
        assert torch.isfinite(value.float()).all()
    log = capsys.readouterr().out
    assert 'Skipped this step (1 so far)' in log
    assert 'Epoch 2: skipped 1 step(s) with a non-finite loss' in log


def test_the_mode_is_checked():
    with pytest.raises(ValueError, match='on_non_finite'):
        NonFiniteLossHook(on_non_finite='ignore')
