"""Train a ctal_mm model: ``python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] ...``.

The same flags as MMSegmentation's tools/train.py. Distributed: ``tools/dist_train.sh CONFIG N``
(torchrun; on a machine without GPUs it trains on CPU with gloo) or ``tools/slurm_train.sh``.
"""

import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner
from torch.distributed.elastic.multiprocessing.errors import record

from ctal_mm.engine.config_checks import ConfigError, check_config
from ctal_mm.engine.hooks.preemption_hook import requeue_exit_code
from ctal_mm.engine.launch import (
    drop_disabled_hooks,
    enable_amp,
    finish_distributed,
    setup_cpu_distributed,
)
from ctal_mm.registry import RUNNERS
from ctal_mm.utils import register_all_modules
from ctal_mm.utils.compat import UnsafeCheckpointError
from ctal_mm.utils.model_weights import CheckpointMismatchError
from ctal_mm.utils.work_dir_lock import (
    WorkDirLockedError,
    claim_work_dir,
    launch_rank,
    lock_config,
)


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train a multitask dense-prediction model'
    )
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--work-dir', help='the dir to save logs and checkpoints'
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the latest checkpoint in the work dir, or from the given checkpoint',
    )
    parser.add_argument(
        '--non-strict',
        action='store_true',
        help='load a checkpoint whose keys do not all fit the model (only the keys that '
        'fit are loaded; the others keep their initial values). Without it a missing, '
        'unexpected or reshaped key stops the run.',
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: fp16 with loss scaling on GPU, bf16 on CPU',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, xxx=yyy pairs merged into the config, e.g. '
        'train_dataloader.batch_size=4 "model.tasks.depth.weight=2"',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


# With torchrun, `record` writes a failing rank's exception to the file torchrun reads, so its
# summary names the rank *and* the cause instead of "To enable traceback see ...".
@record
def main():
    args = parse_args()
    register_all_modules(init_default_scope=False)

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: command line > config > work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(args.config))[0]
        )

    if args.amp:
        enable_amp(cfg)

    if args.non_strict:
        cfg.load_strict = False

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    # The config's mistakes, each with its key and fix, before anything is built. Switched
    # off with --cfg-options default_hooks.config_check=None (also skips the hook's checks).
    if cfg.get('default_hooks', {}).get('config_check', True) is not None:
        try:
            check_config(cfg)
        except ConfigError as error:
            sys.exit(str(error))
    drop_disabled_hooks(cfg)

    # one run per work dir (rank 0 holds the lock), and what interrupted saves left there
    # removed before the Runner writes anything (its config dump would fail on a full disk)
    lock = None
    lock_arguments = lock_config(cfg)
    if lock_arguments is not None and launch_rank(args.launcher) == 0:
        try:
            lock = claim_work_dir(cfg.work_dir, **lock_arguments)
        except WorkDirLockedError as error:
            sys.exit(f'WorkDirLockedError: {error}')

    setup_cpu_distributed(cfg)
    runner = (
        Runner.from_cfg(cfg)
        if 'runner_type' not in cfg
        else RUNNERS.build(cfg)
    )
    try:
        runner.train()
    except (CheckpointMismatchError, UnsafeCheckpointError) as error:
        # the message says what is wrong and what to do; a traceback adds nothing
        sys.exit(f'{type(error).__name__}: {error}')
    # stopped by SIGTERM / SIGUSR1 after saving: the status asks for a requeue
    exit_code = requeue_exit_code(runner)
    del runner  # it holds the process group: see finish_distributed
    finish_distributed()
    if lock is not None:
        lock.release()
    if exit_code is not None:
        sys.exit(exit_code)


if __name__ == '__main__':
    main()
