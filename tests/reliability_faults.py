"""Faults injected into training runs started by the reliability tests (not a test module).

A run's config imports this module (``custom_imports``) and adds ``FaultInjectionHook`` and
``LossRecorderHook``; the fault is chosen by the environment, so the killed run, the resumed
run and the uninterrupted reference share one config:

    CTAL_FAULT=kill_in_step:3       SIGKILL inside training iteration 3 (0-based, global),
                                    after backward, before the optimizer step
    CTAL_FAULT=kill_in_save:2       SIGKILL while epoch_2.pth is written: the file is cut to
                                    half its size first, as if the kill came mid-write
    CTAL_FAULT=kill_before_pointer:3  SIGKILL after epoch_3.pth is in place, before
                                    last_checkpoint names it
    CTAL_FAULT=raise_in_step:1      RuntimeError('injected fault') in iteration 1
    CTAL_FAULT=hang_in_step:1       sleep for an hour in iteration 1
    CTAL_FAULT=pause_in_step:1      in iteration 1, create work_dir/paused and wait (up to
                                    2 minutes) until work_dir/continue exists
    CTAL_FAULT=enospc_in_save:2     writing epoch_2.pth fails half-way with ENOSPC (disk
                                    full), as the write of a full disk does
    CTAL_FAULT=full_disk_while_tmp:2  every file opened for writing in the work dir fails
                                    with ENOSPC while epoch_2.pth.tmp exists there: the
                                    disk an interrupted save filled (set at config import)
    CTAL_FAULT=sigterm_in_step:3    SIGTERM to this process inside iteration 3 (as Slurm
                                    sends before a kill); sigusr1_in_step: SIGUSR1
    CTAL_FAULT_RANK=1               only on rank 1 (default: every rank)
"""

import builtins
import errno
import json
import os
import os.path as osp
import signal
import sys
import time

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from ctal_mm.models.multitask_model import MultiTaskEncoderDecoder
from ctal_mm.registry import HOOKS, MODELS


def _fault():
    spec = os.environ.get('CTAL_FAULT', '')
    if not spec:
        return None, None
    rank = os.environ.get('CTAL_FAULT_RANK')
    if rank is not None and int(rank) != get_rank():
        return None, None
    name, _, at = spec.partition(':')
    return name, int(at)


def _kill():
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class FaultInjectionHook(Hook):
    priority = 'VERY_LOW'

    def __init__(self):
        self.name, self.at = _fault()

    def before_train(self, runner):
        if self.name is None:
            return
        if self.name.endswith('_in_step'):
            optimizer = runner.optim_wrapper.optimizer
            optimizer.register_step_pre_hook(
                lambda *args: self._in_step(runner)
            )
        if self.name == 'kill_in_save':
            real_fsync = os.fsync

            def cut_and_kill(fd):
                path = os.readlink(f'/proc/self/fd/{fd}')
                if path.endswith(f'epoch_{self.at}.pth.tmp'):
                    os.ftruncate(fd, os.fstat(fd).st_size // 2)
                    _kill()
                return real_fsync(fd)

            os.fsync = cut_and_kill
        if self.name == 'enospc_in_save':
            real_fsync = os.fsync

            def cut_and_fail(fd):
                path = os.readlink(f'/proc/self/fd/{fd}')
                if path.endswith(f'epoch_{self.at}.pth.tmp'):
                    os.ftruncate(fd, os.fstat(fd).st_size // 2)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real_fsync(fd)

            os.fsync = cut_and_fail
        if self.name == 'kill_before_pointer':
            real_replace = os.replace

            def replace(src, dst, *args, **kwargs):
                if osp.basename(dst) == 'last_checkpoint' and osp.isfile(
                    osp.join(osp.dirname(dst), f'epoch_{self.at}.pth')
                ):
                    _kill()
                return real_replace(src, dst, *args, **kwargs)

            os.replace = replace

    def _in_step(self, runner):
        if runner.iter != self.at:
            return
        if self.name == 'kill_in_step':
            _kill()
        elif self.name == 'raise_in_step':
            raise RuntimeError('injected fault')
        elif self.name == 'hang_in_step':
            time.sleep(3600)
        elif self.name == 'pause_in_step':
            open(osp.join(runner.work_dir, 'paused'), 'w').close()
            deadline = time.time() + 120
            while not osp.exists(osp.join(runner.work_dir, 'continue')):
                if time.time() > deadline:
                    raise RuntimeError('pause_in_step: nobody said continue')
                time.sleep(0.1)
        elif self.name == 'sigterm_in_step':
            os.kill(os.getpid(), signal.SIGTERM)
        elif self.name == 'sigusr1_in_step':
            os.kill(os.getpid(), signal.SIGUSR1)


def _fill_the_disk_while_tmp(epoch):
    # Installed when the config imports this module, before tools/train.py builds anything.
    work_dir = sys.argv[sys.argv.index('--work-dir') + 1]
    work_dir = osp.realpath(work_dir)
    leftover = osp.join(work_dir, f'epoch_{epoch}.pth.tmp')
    real_open = builtins.open

    def full_open(file, mode='r', *args, **kwargs):
        writing = any(c in mode for c in 'wax+')
        if (
            writing
            and isinstance(file, (str, os.PathLike))
            and osp.realpath(file).startswith(work_dir + os.sep)
            and osp.exists(leftover)
        ):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real_open(file, mode, *args, **kwargs)

    builtins.open = full_open


if _fault()[0] == 'full_disk_while_tmp':
    _fill_the_disk_while_tmp(_fault()[1])


@HOOKS.register_module()
class LossRecorderHook(Hook):
    """Appends each iteration's total loss to ``work_dir/losses_rank<r>.jsonl``."""

    priority = 'VERY_LOW'

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        path = osp.join(runner.work_dir, f'losses_rank{get_rank()}.jsonl')
        with open(path, 'a') as f:
            record = dict(iter=runner.iter, loss=float(outputs['loss']))
            f.write(json.dumps(record) + '\n')


@MODELS.register_module()
class Float64MultiTaskEncoderDecoder(MultiTaskEncoderDecoder):
    """The multitask model computed in float64 (for comparisons that float32 rounding, which
    depends on the batch size each process convolves, would blur)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.double()

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return super().forward(inputs.double(), data_samples, mode)
