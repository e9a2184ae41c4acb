"""Preemption: a signal from the scheduler becomes a resumable checkpoint and a requeue."""

import os
import os.path as osp
import signal
import threading
from typing import Optional, Sequence

import torch
from mmengine.dist import (
    all_gather_object,
    all_reduce,
    barrier,
    is_distributed,
    is_main_process,
)
from mmengine.hooks import Hook

from ctal_mm.engine.loops import generator_states
from ctal_mm.registry import HOOKS

# sysexits.h EX_TEMPFAIL, "try again later": tools/slurm_train.sh requeues the job on it
REQUEUE_EXIT_CODE = 75
# message-hub key naming the preemption checkpoint still to be removed
PENDING_KEY = 'preemption_checkpoint'


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Stops training on SIGTERM / SIGUSR1 with a checkpoint to resume from.

    Slurm sends SIGTERM before it kills a preempted or cancelled job, and the signal
    chosen with ``--signal`` (``#SBATCH --signal=B:USR1@120``: SIGUSR1 two minutes
    before the time limit). While training, these signals only raise a flag. After each
    iteration the flag is shared over the ranks (one all-reduce of one number), so all
    ranks stop after the same iteration even when the signal reached only some; then
    ``iter_<n>.pth`` is written through ctal_mm's CheckpointHook (atomic file,
    ``last_checkpoint`` updated) with the generator states of every rank, one line is
    logged, and training ends; ``tools/train.py`` then exits with ``exit_code``
    (75, EX_TEMPFAIL), which ``tools/slurm_train.sh`` turns into a requeue.

    ``--resume`` continues after that iteration (ctal_mm's EpochBasedTrainLoop skips the
    batches already trained and restores the generators). The preemption checkpoint is
    outside the ``max_keep_ckpts`` rotation; it is removed once a later checkpoint is
    complete. With gradient accumulation the stop waits for the iteration that applies
    the accumulated gradient. A signal during validation is handled after the next
    training iteration.

    Args:
        signals: names of the signals that stop training.
        exit_code: the exit status tools/train.py ends with after a stop.
    """

    priority = 'LOWEST'  # after every other hook of the iteration, the scheduler included

    def __init__(
        self,
        signals: Sequence[str] = ('SIGTERM', 'SIGUSR1'),
        exit_code: int = REQUEUE_EXIT_CODE,
    ):
        unknown = [s for s in signals if not hasattr(signal, str(s))]
        if unknown:
            raise ValueError(
                f'PreemptionHook(signals={list(signals)}): {unknown} are not signal '
                'names of this platform (e.g. SIGTERM, SIGUSR1, SIGUSR2).'
            )
        self.signals = [getattr(signal, s) for s in signals]
        self.exit_code = int(exit_code)
        self.received: Optional[int] = None
        self.stopped: Optional[dict] = (
            None  # signal, iter, checkpoint once stopped
        )
        self._previous = {}
        self._checkpoint_hook = None
        self._loaded_states = None  # from the resumed checkpoint

    # ----------------------------------------------------------------- signals
    def _on_signal(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum

    def before_train(self, runner) -> None:
        from .checkpoint_hook import CheckpointHook

        hooks = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
        self._checkpoint_hook = hooks[0] if hooks else None
        if self._checkpoint_hook is None:
            runner.logger.warning(
                "PreemptionHook needs ctal_mm's CheckpointHook (default_hooks."
                "checkpoint=dict(type='CheckpointHook')) to save; signals will end "
                'training without a checkpoint.'
            )
            return
        loop = runner.train_loop
        if hasattr(loop, 'resume_generators_at'):
            loop.resume_generators_at(self._loaded_states)
        if threading.current_thread() is not threading.main_thread():
            runner.logger.warning(
                'PreemptionHook: training runs outside the main thread, where '
                'signal handlers cannot be installed; preemption is not handled.'
            )
            return
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def after_train(self, runner) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        # handed to the loop in before_train, which comes after the resume
        self._loaded_states = checkpoint.get('meta', {}).get(
            'generator_states'
        )

    # ----------------------------------------------------------------- stopping
    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ) -> None:
        self._remove_superseded(runner)
        if self._checkpoint_hook is None:
            return
        signum = self.received or 0
        if is_distributed():
            shared = torch.tensor([float(signum)])
            all_reduce(shared, op='max')
            signum = int(shared.item())
        if signum == 0 or not _applied_gradient(runner.optim_wrapper):
            return
        self._stop(runner, signum)

    def after_train_epoch(self, runner) -> None:
        self._remove_superseded(runner)

    def _stop(self, runner, signum: int) -> None:
        loop = runner.train_loop
        done = runner.iter + 1
        states = all_gather_object(generator_states())
        filename = f'iter_{done}.pth'
        meta = dict(
            epoch=runner.epoch,
            iter=done,
            preempted_by=signal.Signals(signum).name,
            generator_states=dict(epoch=runner.epoch, iter=done, ranks=states),
        )
        hook = self._checkpoint_hook
        path = hook.file_backend.join_path(hook.out_dir, filename)
        previous = runner.message_hub.get_info(PENDING_KEY)
        # saved inside the checkpoint: the resumed run removes it when superseded
        runner.message_hub.update_info(PENDING_KEY, path)
        hook.save_now(runner, filename, meta)
        if previous and previous != path:
            _remove(runner, previous)
        barrier()  # the file is complete before any rank exits
        per_epoch = len(loop.dataloader) if hasattr(loop, 'dataloader') else 0
        in_epoch = done - runner.epoch * per_epoch
        self.stopped = dict(
            signal=signal.Signals(signum).name, iter=done, checkpoint=path
        )
        runner.logger.warning(
            f'{signal.Signals(signum).name} received: saved {path} after iteration '
            f'{done} (epoch {runner.epoch + 1}, iteration {in_epoch}/{per_epoch}); '
            f'stopping with exit code {self.exit_code} (requeue). Resume with '
            '--resume.'
        )
        loop.stop_training = True

    def _remove_superseded(self, runner) -> None:
        """Delete the preemption checkpoint once a later checkpoint is complete."""
        pending = runner.message_hub.get_info(PENDING_KEY)
        if not pending:
            return
        last = runner.message_hub.get_info('last_ckpt')
        if last is None or last == pending:
            return
        runner.message_hub.update_info(PENDING_KEY, None)
        _remove(runner, pending)


def _remove(runner, path: str) -> None:
    if is_main_process() and '://' not in str(path) and osp.isfile(path):
        os.remove(path)
        runner.logger.info(
            f'Removed the preemption checkpoint {path}: a later one is complete.'
        )


def _applied_gradient(optim_wrapper) -> bool:
    """Whether this iteration ended an accumulation (the gradient was applied)."""
    wrappers = (
        list(optim_wrapper.values())
        if hasattr(optim_wrapper, 'optim_wrappers')
        else [optim_wrapper]
    )
    for wrapper in wrappers:
        counts = getattr(wrapper, '_accumulative_counts', 1)
        inner = getattr(wrapper, '_inner_count', 0)
        max_counts = getattr(wrapper, '_max_counts', -1)
        if counts > 1 and inner % counts != 0 and inner != max_counts:
            return False
    return True


def requeue_exit_code(runner) -> Optional[int]:
    """The exit status a stopped run should end with, None when it was not stopped."""
    for hook in runner.hooks:
        if isinstance(hook, PreemptionHook) and hook.stopped is not None:
            return hook.exit_code
    return None
