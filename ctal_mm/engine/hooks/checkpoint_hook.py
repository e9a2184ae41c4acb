"""ctal_mm's CheckpointHook: checkpoints that survive a kill, and resumes that continue exactly."""

import logging
import os.path as osp
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_rank, is_main_process
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook

from ctal_mm.registry import HOOKS
from ctal_mm.utils.checkpoint_files import (
    ATOMIC_BACKEND,
    POINTER,
    atomic_write,
    find_resumable_checkpoint,
    is_complete_checkpoint,
    remove_incomplete_files,
)


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
class CheckpointHook(MMEngineCheckpointHook):
    """mmengine's CheckpointHook, made safe to kill at any moment; same arguments.

    Registered under mmengine's name in ctal_mm's scope, so every config with
    ``default_scope = 'ctal_mm'`` and ``default_hooks.checkpoint=dict(type='CheckpointHook')``
    gets it (``type='mmengine.CheckpointHook'`` selects the original). Differences:

    * Local checkpoints (and ``work_dir/last_checkpoint``) are written to ``<file>.tmp`` and
      renamed into place, so a file is complete or absent; ``*.tmp`` leftovers of a killed
      save are removed at the next start.
    * With ``max_keep_ckpts``, the oldest checkpoint is deleted after the new one is complete
      (mmengine deletes it first: a kill in between left nothing to resume from).
    * ``resume=True`` without a path (``tools/train.py --resume``) resumes from the newest
      complete checkpoint, also when ``last_checkpoint`` is missing, stale or names a
      truncated file; a truncated file given explicitly is refused with its name.
    * ``reseed_per_epoch``: before each epoch the Python, numpy and torch generators are
      seeded from (``randomness.seed``, epoch), so data augmentation after a resume draws the
      same numbers as the uninterrupted run did. With ``randomness.diff_rank_seed`` the rank
      enters the seed too.

    Args:
        reseed_per_epoch: reseed the global generators before every training epoch.
        *args, **kwargs: those of ``mmengine.hooks.CheckpointHook``.
    """

    def __init__(self, *args, reseed_per_epoch: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.reseed_per_epoch = reseed_per_epoch

    # ----------------------------------------------------------------- resume
    def before_run(self, runner) -> None:
        # The Runner resolves `resume` in load_or_resume(), right after before_run; mmengine
        # offers no public setter, hence the private attributes.
        if not getattr(runner, '_resume', False):
            return
        load_from = getattr(runner, '_load_from', None)
        if load_from is None:
            path, notes = find_resumable_checkpoint(runner.work_dir)
            for note in notes:
                runner.logger.warning(f'Resume: {note}.')
            if path is None:
                runner.logger.info(
                    f'Resume: no complete checkpoint in {runner.work_dir}; '
                    'training starts from the beginning.'
                )
                # else mmengine follows a stale last_checkpoint to a missing file
                runner._resume = False
                return
            runner.logger.info(f'Resume: from {path}.')
            runner._load_from = path
        elif '://' not in str(load_from) and osp.exists(load_from):
            if not is_complete_checkpoint(load_from):
                raise ValueError(
                    f'--resume {load_from}: the file is truncated or not a '
                    'checkpoint (was the run killed while saving it?). '
                    'Resume with --resume and no path to take the newest '
                    f'complete checkpoint in {runner.work_dir}.'
                )

    # ----------------------------------------------------------------- saving
    def before_train(self, runner) -> None:
        out_dir = self.out_dir if self.out_dir is not None else runner.work_dir
        local = '://' not in str(out_dir)
        if local and self.backend_args is None and not self.file_client_args:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        super().before_train(runner)
        if local and is_main_process():
            for folder in {str(self.out_dir), runner.work_dir}:
                for path in remove_incomplete_files(folder):
                    runner.logger.warning(
                        f'Removed {path}, left by a save that was interrupted.'
                    )

    def _save_checkpoint_with_step(self, runner, step, meta):
        # mmengine's method with two changes: the pointer file is written atomically, and
        # the checkpoint that falls out of `max_keep_ckpts` is deleted only after the new
        # one is complete.
        outdated = None
        if self.max_keep_ckpts > 0 and not (
            self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step
        ):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info(
                'keep_ckpt_ids', list(self.keep_ckpt_ids)
            )

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(
            self.out_dir, ckpt_filename
        )
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args,
        )

        if not is_main_process():
            return
        atomic_write(
            str(self.last_ckpt).encode(), osp.join(runner.work_dir, POINTER)
        )
        if outdated is not None:
            path = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(outdated)
            )
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)  # deepspeed's checkpoints

    def save_now(self, runner, filename: str, meta: dict) -> str:
        """Save ``filename`` now, by iteration (``meta`` epoch/iter as given), through the
        same backend and atomic pointer update as the periodic saves, outside the
        ``max_keep_ckpts`` rotation; returns its path. Used by PreemptionHook."""
        path = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', path)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=False,
            backend_args=self.backend_args,
            **self.args,
        )
        if is_main_process():
            atomic_write(
                str(path).encode(), osp.join(runner.work_dir, POINTER)
            )
        return path

    # ----------------------------------------------------------------- randomness
    def before_train_epoch(self, runner) -> None:
        if not self.reseed_per_epoch or runner.seed is None:
            return
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        rank = get_rank() if randomness.get('diff_rank_seed') else None
        seed = epoch_seed(runner.seed, runner.epoch, rank)
        seed_everything(seed)
        runner.logger.log(
            logging.DEBUG,
            f'Epoch {runner.epoch + 1}: generators seeded {seed}.',
        )
