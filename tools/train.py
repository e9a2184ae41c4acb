"""Train a ctal_mm model: ``python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp] ...``.

The same flags as MMSegmentation's tools/train.py. Distributed: ``tools/dist_train.sh CONFIG N``
(torchrun; on a machine without GPUs it trains on CPU with gloo) or ``tools/slurm_train.sh``.
"""

import argparse
import sys

from torch.distributed.elastic.multiprocessing.errors import record

from ctal_mm.engine.hooks.preemption_hook import requeue_exit_code
from ctal_mm.engine.launch import (
    add_common_arguments,
    build_tool_runner,
    check_tool_config,
    enable_amp,
    finish_distributed,
    load_tool_config,
    parse_tool_args,
    run_or_exit,
)
from ctal_mm.engine.work_dir_lock import (
    WorkDirLockedError,
    claim_work_dir,
    launch_rank,
    lock_config,
)
from ctal_mm.utils import register_all_modules


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
        '--amp',
        action='store_true',
        help='mixed precision: fp16 with loss scaling on GPU, bf16 on CPU',
    )
    add_common_arguments(parser)
    return parse_tool_args(parser)


# With torchrun, `record` writes a failing rank's exception to the file torchrun reads, so its
# summary names the rank *and* the cause instead of "To enable traceback see ...".
@record
def main():
    args = parse_args()
    register_all_modules(init_default_scope=False)

    cfg = load_tool_config(args)

    if args.amp:
        enable_amp(cfg)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    check_tool_config(cfg)

    # one run per work dir (rank 0 holds the lock), and what interrupted saves left there
    # removed before the Runner writes anything (its config dump would fail on a full disk)
    lock = None
    lock_arguments = lock_config(cfg)
    if lock_arguments is not None and launch_rank(args.launcher) == 0:
        try:
            lock = claim_work_dir(cfg.work_dir, **lock_arguments)
        except WorkDirLockedError as error:
            sys.exit(f'WorkDirLockedError: {error}')

    runner = build_tool_runner(cfg)
    run_or_exit(runner.train)
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
