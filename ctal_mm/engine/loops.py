"""ctal_mm's EpochBasedTrainLoop: stops between two iterations, resumes in the middle of an epoch.

mmengine's loop checks ``stop_training`` once per epoch and, resumed from a checkpoint saved
inside an epoch, runs that whole epoch again (more iterations than ``max_iters``, a negative
ETA, other weights). This one is registered under mmengine's name in ctal_mm's scope, so
``train_cfg=dict(type='EpochBasedTrainLoop', ...)`` gets it (``'mmengine.EpochBasedTrainLoop'``
selects the original).
"""

import itertools
import logging
import random
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.runner import EpochBasedTrainLoop as MMEngineEpochBasedTrainLoop
from torch.utils.data import BatchSampler, Sampler

from ctal_mm.registry import LOOPS


def generator_states() -> Dict[str, Any]:
    """The states of Python's, numpy's and torch's global generators, as plain data.

    Plain ints, strings and tensors only, so a checkpoint holding them loads with
    ``weights_only=True``.
    """
    version, words, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = dict(
        python=dict(
            version=version,
            words=torch.tensor(words, dtype=torch.int64),
            gauss=gauss,
        ),
        numpy=dict(
            name=name,
            keys=torch.from_numpy(keys.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached=float(cached),
        ),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_generator_states(states: Dict[str, Any]) -> None:
    """Set the global generators to ``states`` (from :func:`generator_states`)."""
    py = states['python']
    random.setstate(
        (py['version'], tuple(int(w) for w in py['words']), py['gauss'])
    )
    npy = states['numpy']
    np.random.set_state(
        (
            npy['name'],
            npy['keys'].numpy().astype(np.uint32),
            npy['pos'],
            npy['has_gauss'],
            npy['cached'],
        )
    )
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


class _SkipFirst(Sampler):
    """``sampler`` without its first ``count`` indices; its length stays the full epoch's,
    so ``len(dataloader)`` (progress, ETA, end-of-epoch tests) does not change."""

    def __init__(self, sampler, count: int):
        self.sampler = sampler
        self.count = count

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.sampler), self.count, None)

    def __len__(self) -> int:
        return len(self.sampler)


@LOOPS.register_module()
class EpochBasedTrainLoop(MMEngineEpochBasedTrainLoop):
    """mmengine's EpochBasedTrainLoop (same arguments) that can stop and resume mid-epoch.

    * ``stop_training`` is looked at after every iteration: set during an epoch (as
      :class:`~ctal_mm.engine.hooks.PreemptionHook` does), training stops at the end of
      that iteration, the epoch left unfinished (no ``after_train_epoch``, no validation).
    * Resumed from a checkpoint saved after ``b`` of the ``n`` iterations of an epoch
      (``meta['iter'] = epoch * n + b``), the loop runs iterations ``b..n-1`` of that epoch:
      the sampler, set to the same epoch, skips the ``b`` batches' indices (nothing is read
      or augmented for them), and the hooks see the true batch indices. When the checkpoint
      holds the generator states of that moment (``meta['generator_states']``, written by
      PreemptionHook), they are restored after the skip, so the remaining batches draw the
      same random numbers as in the uninterrupted run (exact with ``num_workers=0``; data
      workers keep their own generators).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._resume_states: Optional[Dict[str, Any]] = None

    def resume_generators_at(self, saved: Optional[Dict[str, Any]]) -> None:
        """Generator states to restore when the epoch resumes at ``saved['iter']``.

        ``saved``: ``dict(epoch=..., iter=..., ranks=[states of rank 0, 1, ...])``.
        """
        self._resume_states = saved

    def run(self) -> torch.nn.Module:
        self.runner.call_hook('before_train')
        while self._epoch < self._max_epochs and not self.stop_training:
            if not self.run_epoch():
                break  # stopped inside the epoch
            self._decide_current_val_interval()
            if (
                self.runner.val_loop is not None
                and self._epoch >= self.val_begin
                and (
                    self._epoch % self.val_interval == 0
                    or self._epoch == self._max_epochs
                )
            ):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self) -> bool:
        """Iterate (the rest of) one epoch; False when stopped before its end."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        start = self._batches_done()
        batch_sampler = self.dataloader.batch_sampler
        sampler = getattr(batch_sampler, 'sampler', None)
        skip_indices = (
            start > 0 and type(batch_sampler) is BatchSampler and sampler
        )
        if skip_indices:
            # BatchSampler reads `sampler` when the first batch is drawn: keep the
            # wrapper in place for the epoch
            batch_sampler.sampler = _SkipFirst(
                sampler, start * batch_sampler.batch_size
            )
        try:
            batches = iter(self.dataloader)
            if start > 0:
                self._log_resume(start, skipped_by_sampler=bool(skip_indices))
                if not skip_indices:
                    for _ in range(start):
                        next(batches)
                self._restore_generators()
            for idx, data_batch in enumerate(batches, start):
                self.run_iter(idx, data_batch)
                if self.stop_training:
                    return False
        finally:
            if skip_indices:
                batch_sampler.sampler = sampler
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
        return True

    def _batches_done(self) -> int:
        """Iterations of the current epoch already trained (by the run resumed from)."""
        per_epoch = len(self.dataloader)
        done = self._iter - self._epoch * per_epoch
        if 0 <= done <= per_epoch:
            return done
        self.runner.logger.warning(
            f'Resumed at iteration {self._iter} of epoch {self._epoch + 1}, which '
            f'does not fall in that epoch with {per_epoch} iterations per epoch '
            '(was the batch size or the dataset changed?); the epoch is run from '
            'its start.'
        )
        return 0

    def _log_resume(self, start: int, skipped_by_sampler: bool) -> None:
        how = (
            'their sample indices are skipped, nothing is read'
            if skipped_by_sampler
            else 'the sampler cannot skip, so they are read and dropped'
        )
        self.runner.logger.info(
            f'Resuming epoch {self._epoch + 1} at iteration {start + 1}/'
            f'{len(self.dataloader)} (iteration {self._iter + 1} of the run): the '
            f'first {start} were trained before the interruption ({how}).'
        )

    def _restore_generators(self) -> None:
        saved, self._resume_states = self._resume_states, None
        if saved is None:
            return
        where = (saved.get('epoch'), saved.get('iter'))
        if where != (self._epoch, self._iter):
            return  # states of another moment (e.g. load_from, not resume)
        ranks: List[Dict[str, Any]] = saved.get('ranks') or []
        if len(ranks) != get_world_size():
            self.runner.logger.warning(
                f'The checkpoint holds the generator states of {len(ranks)} '
                f'process(es), this run has {get_world_size()}: augmentation of '
                'the rest of the epoch draws other random numbers than the '
                'interrupted run would have.'
            )
            return
        restore_generator_states(ranks[get_rank()])
        self.runner.logger.log(
            logging.DEBUG, 'Generators restored to the interrupted moment.'
        )
