"""What ctal_mm needs to run unchanged on both supported stacks.

Checkpoint loading. torch >= 2.6 unpickles with ``weights_only=True`` by default.
mmengine 0.10.7 calls plain ``torch.load`` and so cannot resume its own checkpoints (they
hold HistoryBuffer and numpy objects); the maintained fork allow-lists those types but,
when anything else is in the file, falls back to ``weights_only=False`` and runs whatever
the pickle says. ctal_mm replaces mmengine's loader for local files on both stacks with one
that allows exactly the types mmengine writes and refuses the rest with a message, so a
foreign object in a checkpoint is never executed.
"""

import os.path as osp
import pickle
from typing import Callable, List

import numpy as np
import torch
from mmengine.runner.checkpoint import CheckpointLoader


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds a pickled object outside the types mmengine writes."""


def checkpoint_safe_globals() -> List[Callable]:
    """The non-tensor types an mmengine Runner writes into a checkpoint."""
    from mmengine.logging.history_buffer import HistoryBuffer

    np_core = np._core if hasattr(np, '_core') else np.core
    return [
        # message hub: log history buffers hold numpy arrays and scalars
        HistoryBuffer,
        np_core.multiarray._reconstruct,
        np_core.multiarray.scalar,
        np.ndarray,
        np.dtype,
        type(np.dtype(np.uint8)),
        type(np.dtype(np.uint32)),
        type(np.dtype(np.int32)),
        type(np.dtype(np.int64)),
        type(np.dtype(np.float32)),
        type(np.dtype(np.float64)),
        type(np.dtype(np.bool_)),
        # schedulers and the runner's meta
        slice,
        getattr,
    ]


def safe_torch_load(filename: str, map_location=None):
    """``torch.load`` with ``weights_only=True`` and mmengine's types allowed.

    Raises:
        UnsafeCheckpointError: the file pickles another type; its code is not run.
    """
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True
            )
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f'Refused to load checkpoint {filename!r}: it contains a pickled object that is '
            f'not a tensor or one of the types mmengine writes into checkpoints, so loading '
            f'it could run arbitrary code. torch said: {str(err).splitlines()[0]} '
            f'If you trust the file, open it yourself with '
            f'torch.load(path, weights_only=False) and re-save only its "state_dict" '
            f'(tools/model_converters/ does this for the official CTAL checkpoints).'
        ) from err


def _load_local_checkpoint(filename: str, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint {filename!r} does not exist. Check the path given to --resume, '
            f'load_from or --checkpoint.'
        )
    return safe_torch_load(filename, map_location=map_location)


def install_safe_checkpoint_loading() -> None:
    """Make mmengine load local checkpoints through :func:`safe_torch_load`. Idempotent."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_local_checkpoint, force=True
    )
