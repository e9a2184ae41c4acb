"""What tools/train.py and tools/test.py share: their common flags, turning command-line choices
into config changes, the config checks, building the Runner and the CPU distributed set-up."""

import argparse
import datetime
import difflib
import gc
import logging
import os
import os.path as osp
import re
import sys
from typing import Callable

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log

from .config_checks import ConfigError, check_config
from .config_loading import add_cfg_options_argument, load_config
from .distributed import CPUDistributedDataParallel

CPU_DDP = CPUDistributedDataParallel.__name__


def setup_cpu_distributed(cfg: Config) -> None:
    """Make ``--launcher pytorch`` work on machines without a GPU.

    mmengine's ``init_dist`` always calls ``torch.cuda.set_device`` and its default DDP wrapper
    passes ``device_ids=[LOCAL_RANK]``, which DDP rejects for a CPU module. Without CUDA we create
    the gloo process group ourselves from torchrun's environment (the Runner then skips its own
    initialisation) and wrap the model with ``device_ids=None``. With CUDA nothing changes.

    ``env_cfg.dist_cfg.timeout`` (seconds, as for mmengine's ``init_dist``) bounds how long a
    collective waits for a rank that stopped answering; torch's default is 30 minutes.
    Synchronised BatchNorm (``sync_bn='torch'`` or ``SyncBN`` layers in the model), which
    torch supports on GPU only, is done by
    :class:`~ctal_mm.engine.distributed.CPUDistributedDataParallel`.
    """
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    missing = [
        k
        for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
        if k not in os.environ
    ]
    if missing:
        raise RuntimeError(
            f'--launcher {cfg.launcher} on CPU needs the environment torchrun sets; {missing} '
            'are missing. Start the job with tools/dist_train.sh CONFIG NPROC (torchrun).'
        )
    dist_cfg = cfg.env_cfg.setdefault('dist_cfg', {})
    if not dist.is_initialized():
        timeout = dist_cfg.get('timeout')
        kwargs = (
            dict(timeout=datetime.timedelta(seconds=timeout))
            if timeout is not None
            else {}
        )
        dist.init_process_group(backend='gloo', **kwargs)
    dist_cfg['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel'
    )
    wrapper['device_ids'] = None
    if wrapper.get('type') in (
        'MMDistributedDataParallel',
        CPU_DDP,
    ) and (cfg.get('sync_bn') or _has_sync_bn(cfg.get('model'))):
        wrapper['type'] = CPU_DDP
        wrapper['sync_bn'] = True
        # else mmengine converts to torch's SyncBatchNorm, which is GPU-only
        cfg.sync_bn = None
    cfg.model_wrapper_cfg = wrapper


def _has_sync_bn(node) -> bool:
    """Whether a model config asks for SyncBN layers anywhere (e.g. ``norm_cfg``)."""
    if isinstance(node, dict):
        return node.get('type') in ('SyncBN', 'MMSyncBN') or any(
            _has_sync_bn(v) for v in node.values()
        )
    if isinstance(node, (list, tuple)):
        return any(_has_sync_bn(v) for v in node)
    return False


def finish_distributed() -> None:
    """Shut the process groups down before the interpreter does.

    Call it after the Runner is gone (``del runner``): its model wrapper holds the group. A
    group still alive at exit has gloo worker threads that may release a finished
    collective's tensors while Python finalises; that aborts the process ("terminate called
    without an active exception"), failing a job that had succeeded (seen here about once
    in ten 2-process runs). Destroying the group joins those threads first.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    gc.collect()  # the Runner's reference cycles hold the model wrapper, which holds the group
    dist.destroy_process_group()
    gc.collect()


# the default hooks mmengine's Runner registers itself; it accepts None only for these
MMENGINE_DEFAULT_HOOKS = (
    'runtime_info',
    'timer',
    'sampler_seed',
    'logger',
    'param_scheduler',
    'checkpoint',
)


def drop_disabled_hooks(cfg: Config) -> None:
    """Remove the ``default_hooks`` entries set to None that mmengine does not know.

    ``--cfg-options default_hooks.non_finite=None`` is how a default hook is switched off,
    but mmengine's Runner asserts on None for any name but its own six.
    """
    hooks = cfg.get('default_hooks') or {}
    for name in [k for k, v in hooks.items() if v is None]:
        if name not in MMENGINE_DEFAULT_HOOKS:
            hooks.pop(name)


def enable_amp(cfg: Config) -> None:
    """Switch the optimiser wrapper to mixed precision (fp16 + loss scaling on GPU, bf16 on CPU)."""
    current = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if current in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
        print_log(
            f'AMP is already enabled in the config ({current}).',
            logger='current',
            level=logging.WARNING,
        )
        return
    if (
        current == 'JacobianOptimWrapper'
    ):  # gradient-level methods: its own AMP
        cfg.optim_wrapper.dtype = (
            'float16' if torch.cuda.is_available() else 'bfloat16'
        )
        return
    if current != 'OptimWrapper':
        raise ValueError(
            f'--amp replaces optim_wrapper.type "OptimWrapper", but this config uses "{current}". '
            'Set a mixed-precision wrapper in the config instead.'
        )
    if torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    else:
        cfg.optim_wrapper.type = 'AutocastOptimWrapper'
        cfg.optim_wrapper.dtype = 'bfloat16'


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags tools/train.py and tools/test.py share (as mmseg's): ``--non-strict``,
    ``--cfg-options``, ``--launcher`` and ``--local-rank``."""
    parser.add_argument(
        '--non-strict',
        action='store_true',
        help='load a checkpoint whose keys do not all fit the model (only the keys that '
        'fit are loaded; the others keep their initial values). Without it a missing, '
        'unexpected or reshaped key stops the run.',
    )
    add_cfg_options_argument(
        parser, 'train_dataloader.batch_size=4 "model.tasks.depth.weight=2"'
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_tool_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the command line; ``LOCAL_RANK`` set from ``--local-rank`` when the launcher did
    not set it."""
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_tool_config(args: argparse.Namespace) -> Config:
    """``args.config`` read by :func:`~ctal_mm.engine.config_loading.load_config` with the
    launcher, ``--cfg-options``, the work dir (command line >
    config > ``work_dirs/<config name>``) and ``--non-strict`` applied."""
    # the launcher first, so that --cfg-options may still override it
    cfg = load_config(
        args.config, dict(launcher=args.launcher, **(args.cfg_options or {}))
    )
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(args.config))[0]
        )
    if args.non_strict:
        cfg.load_strict = False
    return cfg


def check_tool_config(cfg: Config, loaders=None) -> None:
    """The config's mistakes, each with its key and fix, before anything is built (exits with
    them), then the disabled default hooks dropped.

    Switched off with ``--cfg-options default_hooks.config_check=None`` (which also removes the
    ConfigCheckHook). ``loaders``: the dataloaders to check (default: all).
    """
    if cfg.get('default_hooks', {}).get('config_check', True) is not None:
        try:
            if loaders is None:
                check_config(cfg)
            else:
                check_config(cfg, loaders=loaders)
        except ConfigError as error:
            sys.exit(str(error))
    drop_disabled_hooks(cfg)


# mmengine's words when a config names a type no registry in scope holds
UNKNOWN_TYPE = re.compile(
    r'(?P<type>[\w.]+) is not in the (?P<scope>[\w.]+)::(?P<registry>[\w ]+) registry'
)


def close_type_names(name: str, registry_name: str, count: int = 5) -> list:
    """The registered names of ctal_mm's ``registry_name`` registry (and its parents)
    closest to ``name``."""
    from mmengine.registry import Registry

    import ctal_mm.registry as registries

    names = set()
    for registry in vars(registries).values():
        while isinstance(registry, Registry):
            if registry.name == registry_name:
                names.update(registry.module_dict)
            registry = registry.parent
    lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lower), count, 0.6)
    return [lower[n] for n in close]


def _exit_on_unknown_type(error: KeyError) -> None:
    """An unknown ``type=`` ends the run with mmengine's message and the registered
    names closest to it; any other KeyError is re-raised."""
    message = error.args[0] if error.args else ''
    found = UNKNOWN_TYPE.search(str(message))
    if found is None:
        raise error
    close = close_type_names(
        found['type'].split('.')[-1], found['registry'].strip()
    )
    hint = f' Did you mean {", ".join(map(repr, close))}?' if close else ''
    sys.exit(
        f'KeyError: {message}{hint} Correct the type in the config, or import the '
        "module that registers it with custom_imports=dict(imports=['my_module'])."
    )


def build_tool_runner(cfg: Config):
    """The Runner of ``cfg`` (``runner_type`` respected), after the CPU distributed set-up."""
    from mmengine.runner import Runner

    from ctal_mm.registry import RUNNERS

    setup_cpu_distributed(cfg)
    try:
        if 'runner_type' not in cfg:
            return Runner.from_cfg(cfg)
        return RUNNERS.build(cfg)
    except KeyError as error:
        _exit_on_unknown_type(error)


def run_or_exit(step: Callable[[], object]) -> object:
    """``step()``; a checkpoint that does not fit, is unsafe or is damaged, or a type no
    registry holds, exits with its message alone (it says what is wrong and what to do; a
    traceback adds nothing)."""
    from ctal_mm.utils.checkpoint_integrity import CorruptCheckpointError
    from ctal_mm.utils.compat import UnsafeCheckpointError
    from ctal_mm.utils.model_weights import CheckpointMismatchError

    try:
        return step()
    except (
        CheckpointMismatchError,
        UnsafeCheckpointError,
        CorruptCheckpointError,
    ) as error:
        sys.exit(f'{type(error).__name__}: {error}')
    except KeyError as error:
        _exit_on_unknown_type(error)
