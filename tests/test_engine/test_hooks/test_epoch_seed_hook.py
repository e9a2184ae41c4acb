"""EpochSeedHook: the generators before an epoch depend on (seed, epoch[, rank]) only; the
default runtime has the hook; CheckpointHook names the hook when given reseed_per_epoch."""

import logging
import random
import types

import numpy as np
import pytest
import torch
from repo_scripts import REPO

from ctal_mm.engine.config_loading import load_config
from ctal_mm.engine.hooks import CheckpointHook, EpochSeedHook
from ctal_mm.engine.hooks.epoch_seed_hook import epoch_seed


def _runner(seed, epoch, diff_rank_seed=False):
    return types.SimpleNamespace(
        seed=seed,
        epoch=epoch,
        _randomness_cfg=dict(seed=seed, diff_rank_seed=diff_rank_seed),
        logger=logging.getLogger('test_epoch_seed_hook'),
    )


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_draws_depend_on_seed_and_epoch_only():
    hook = EpochSeedHook()
    hook.before_train_epoch(_runner(3, 1))
    first = _draws()
    _draws()  # whatever ran in between
    hook.before_train_epoch(_runner(3, 1))
    assert _draws() == first
    hook.before_train_epoch(_runner(3, 2))
    assert _draws() != first
    assert epoch_seed(3, 1, rank=1) != epoch_seed(3, 1, rank=2)


def test_no_seed_leaves_the_generators_alone():
    torch.manual_seed(5)
    expected = float(torch.rand(()))
    torch.manual_seed(5)
    EpochSeedHook().before_train_epoch(_runner(None, 0))
    assert float(torch.rand(())) == expected


def test_default_runtime_has_the_hook():
    cfg = load_config(f'{REPO}/configs/_base_/default_runtime.py')
    assert cfg.default_hooks.epoch_seed == dict(type='EpochSeedHook')


def test_checkpoint_hook_points_reseed_per_epoch_to_the_hook():
    with pytest.raises(TypeError, match='epoch_seed=None'):
        CheckpointHook(reseed_per_epoch=False)
