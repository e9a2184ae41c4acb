"""Reseeding the global generators before every training epoch, so that resumes continue
exactly."""

import logging
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from ctal_mm.registry import HOOKS


def epoch_seed(seed: int, epoch: int, rank: Optional[int] = None) -> int:
    """The seed of ``epoch`` (and ``rank``): a function of the run's seed only."""
    words = [int(seed) % 2**32, int(epoch)]
    if rank is not None:
        words.append(int(rank))
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Before each training epoch, seed the Python, numpy and torch generators from
    (``randomness.seed``, epoch).

    Data augmentation after a resume then draws the same numbers as the uninterrupted run did.
    With ``randomness.diff_rank_seed`` the rank enters the seed too. Nothing happens when the
    run has no seed. ``default_hooks.epoch_seed`` in ``configs/_base_/default_runtime.py``;
    ``default_hooks=dict(epoch_seed=None)`` turns it off. Iteration-based loops call
    ``before_train_epoch`` once, at the start: the run is seeded from (seed, 0).
    """

    # as the CheckpointHook: after every other hook's before_train_epoch
    priority = 'VERY_LOW'

    def before_train_epoch(self, runner) -> None:
        if runner.seed is None:
            return
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        rank = get_rank() if randomness.get('diff_rank_seed') else None
        seed = epoch_seed(runner.seed, runner.epoch, rank)
        seed_everything(seed)
        runner.logger.log(
            logging.DEBUG,
            f'Epoch {runner.epoch + 1}: generators seeded {seed}.',
        )
