"""ctal_mm's CheckpointHook: checkpoints that survive a kill, and resumes that continue exactly."""

import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook as MMEngineCheckpointHook
from mmengine.model import is_model_wrapper

from ctal_mm.engine.checkpoint_files import (
    ATOMIC_BACKEND,
    POINTER,
    atomic_write,
    find_resumable_checkpoint,
    is_complete_checkpoint,
    remove_incomplete_files,
)
from ctal_mm.engine.hooks.non_finite_loss_hook import (
    named_list,
    non_finite_names,
    tensors_in,
)
from ctal_mm.engine.work_dir_lock import (
    holds_work_dir_lock,
    lock_config,
    lock_work_dir,
)
from ctal_mm.registry import HOOKS
from ctal_mm.utils.dependency_noise import drop_file_client_deprecation
from ctal_mm.utils.model_weights import check_checkpoint_fits


class NonFiniteCheckpointError(FloatingPointError):
    """The model or optimizer holds NaN or inf: the checkpoint is not written."""


@HOOKS.register_module()
class CheckpointHook(MMEngineCheckpointHook):
    """mmengine's CheckpointHook, made safe to kill at any moment; same arguments.

    Registered under mmengine's name in ctal_mm's scope, so every config with
    ``default_scope = 'ctal_mm'`` and ``default_hooks.checkpoint=dict(type='CheckpointHook')``
    gets it (``type='mmengine.CheckpointHook'`` selects the original). Differences:

    * Local checkpoints (and ``work_dir/last_checkpoint``) are written to ``<file>.tmp`` and
      renamed into place, so a file is complete or absent; ``*.tmp`` leftovers of a killed
      save are removed at the next start, under the work dir's lock
      (:mod:`ctal_mm.engine.work_dir_lock`; taken here unless tools/train.py holds it).
    * With ``max_keep_ckpts``, the oldest checkpoint is deleted after the new one is complete
      (mmengine deletes it first: a kill in between left nothing to resume from).
    * ``resume=True`` without a path (``tools/train.py --resume``) resumes from the newest
      complete checkpoint, also when ``last_checkpoint`` is missing, stale or names a
      truncated file; a truncated file given explicitly is refused with its name.
    * Every checkpoint the Runner loads (``load_from``, ``--resume``, tools/test.py) must fit
      the model exactly: a missing, unexpected or reshaped key raises
      :class:`~ctal_mm.utils.model_weights.CheckpointMismatchError` naming the first few,
      before any weight or optimiser state is copied. ``load_strict = False`` in the config
      (``--non-strict``) loads the keys that fit, as mmengine does.
    * A checkpoint whose weights, buffers or optimizer state hold a NaN or an infinity is
      not written: :class:`NonFiniteCheckpointError` names the tensors and the last good
      checkpoint, which is kept (nothing is rotated away).

    Per-epoch reseeding, the other half of exact resumes, is
    :class:`~ctal_mm.engine.hooks.EpochSeedHook` (``default_hooks.epoch_seed``).

    Args:
        *args, **kwargs: those of ``mmengine.hooks.CheckpointHook``.
    """

    def __init__(self, *args, **kwargs):
        if 'reseed_per_epoch' in kwargs:
            raise TypeError(
                'CheckpointHook(reseed_per_epoch=...): per-epoch reseeding is the '
                'EpochSeedHook; turn it off with default_hooks=dict(epoch_seed=None).'
            )
        super().__init__(*args, **kwargs)
        self._lock = None

    # ----------------------------------------------------------------- resume
    def before_run(self, runner) -> None:
        # mmengine's own saving path logs a FileClient deprecation ctal_mm cannot act on
        drop_file_client_deprecation(runner.logger)
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

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        # The Runner calls this between reading the file and copying anything from it, for
        # load_from and resume alike.
        if not runner.cfg.get('load_strict', True):
            return
        source = getattr(runner, '_load_from', None) or 'the checkpoint'
        check_checkpoint_fits(runner.model, checkpoint, str(source))

    # ----------------------------------------------------------------- saving
    def before_train(self, runner) -> None:
        out_dir = self.out_dir if self.out_dir is not None else runner.work_dir
        local = '://' not in str(out_dir)
        if local and self.backend_args is None and not self.file_client_args:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        super().before_train(runner)
        if local and is_main_process():
            # a .tmp may be another live run's save in progress: cleaned only under the
            # work dir's lock (tools/train.py takes it first; runs from Python take it here)
            arguments = lock_config(runner.cfg)
            if arguments is not None and not holds_work_dir_lock(
                runner.work_dir
            ):
                self._lock = lock_work_dir(runner.work_dir, **arguments)
            for folder in {str(self.out_dir), runner.work_dir}:
                for path in remove_incomplete_files(folder):
                    runner.logger.warning(
                        f'Removed {path}, left by a save that was interrupted.'
                    )

    def after_run(self, runner) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _refuse_non_finite(self, runner, filename: str) -> None:
        # checked on every rank: each holds its own model (BatchNorm statistics differ)
        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        bad = non_finite_names(tensors_in(model.state_dict()))
        if self.save_optimizer and runner.optim_wrapper is not None:
            bad += [
                f'optimizer: {name}'
                for name in non_finite_names(
                    tensors_in(runner.optim_wrapper.state_dict())
                )
            ]
        if not bad:
            return
        last = runner.message_hub.get_info('last_ckpt')
        raise NonFiniteCheckpointError(
            f'Refused to save {filename}: {len(bad)} tensor(s) of the model or its optimizer hold '
            f'NaN or inf ({named_list(bad)}), so training has diverged and the '
            f'checkpoint could not be resumed from. The last good checkpoint is '
            f'{last or "(none saved yet)"}; it is kept. Fix: lower '
            'optim_wrapper.optimizer.lr or clip gradients '
            '(optim_wrapper.clip_grad=dict(max_norm=...)), then --resume from it.'
        )

    def _save_best_checkpoint(self, runner, metrics) -> None:
        self._refuse_non_finite(runner, 'the best checkpoint')
        super()._save_best_checkpoint(runner, metrics)

    def _save_checkpoint_with_step(self, runner, step, meta):
        # mmengine's method with three changes: a model or optimizer holding NaN or inf is
        # not saved (before anything is rotated), the pointer file is written atomically,
        # and the checkpoint that falls out of `max_keep_ckpts` is deleted only after the
        # new one is complete.
        self._refuse_non_finite(runner, self.filename_tmpl.format(step))
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
