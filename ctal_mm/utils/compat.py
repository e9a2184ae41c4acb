"""What ctal_mm needs to run unchanged on both supported stacks.

Checkpoint loading. torch >= 2.6 unpickles with ``weights_only=True`` by default.
mmengine 0.10.7 calls plain ``torch.load`` and so cannot resume its own checkpoints (they
hold HistoryBuffer and numpy objects); the maintained fork allow-lists those types but,
when anything else is in the file, falls back to ``weights_only=False`` and runs whatever
the pickle says; its remote schemes (``https://``, ``torchvision://``, ``open-mmlab://``,
``mmcls://``) go through torch hub's ``load_url``, which unpickles with
``weights_only=False``. ctal_mm replaces every scheme mmengine's CheckpointLoader has with one
that fetches the file as mmengine does (torch hub's cache for URLs, a temporary file for pavi,
the file backend for s3/petrel) and then loads it with :func:`safe_torch_load`: exactly the
types mmengine writes are allowed and the rest is refused with a message, so a foreign object
in a checkpoint is never executed, wherever it came from. Before that, the file's content
hash (and a ``-<sha256 prefix>.pth`` name) is checked
(:func:`ctal_mm.utils.checkpoint_integrity.verify_checkpoint`), so a damaged file is refused.
"""

import io
import os
import os.path as osp
import pickle
import sys
import tempfile
from typing import Callable, List, Optional
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_integrity import verify_checkpoint


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


def safe_torch_load(filename, map_location=None, source: Optional[str] = None):
    """``torch.load`` with ``weights_only=True`` and mmengine's types allowed, of a
    checkpoint whose content hash has been verified first.

    Args:
        filename: a path or a file-like object.
        map_location: as for ``torch.load``.
        source: what the user named (a URL), when ``filename`` is a download or a buffer.

    Raises:
        UnsafeCheckpointError: the file pickles another type; its code is not run.
        CorruptCheckpointError: the file is truncated or its contents do not match the
            content hash it was saved with.
    """
    name = repr(filename) if source is None else repr(source)
    if source is not None and isinstance(filename, str):
        name += f' (downloaded to {filename})'
    if isinstance(filename, (str, os.PathLike)):
        verify_checkpoint(os.fspath(filename), name)
    elif isinstance(filename, io.BytesIO):
        verify_checkpoint(filename.getbuffer(), name)
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True
            )
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f'Refused to load checkpoint {name}: it contains a pickled object that is '
            f'not a tensor or one of the types mmengine writes into checkpoints, so loading '
            f'it could run arbitrary code. torch said: {str(err).splitlines()[0]} '
            f'If you trust the file, open it yourself with '
            f'torch.load(path, weights_only=False) and re-save only its "state_dict" '
            f'(tools/model_converters/ does this for the official CTAL checkpoints).'
        ) from err


def load_from_local(filename: str, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint {filename!r} does not exist. Check the path given to --resume, '
            f'load_from or --checkpoint.'
        )
    return safe_torch_load(filename, map_location=map_location)


def _download(url: str, model_dir: Optional[str] = None) -> str:
    # torch hub's cache, as mmengine's load_from_http (torch.hub.load_state_dict_from_url)
    # uses it: <hub dir>/checkpoints/<basename of the URL>, downloaded once
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.exists(cached):
        sys.stderr.write(f'Downloading: "{url}" to {cached}\n')
        torch.hub.download_url_to_file(url, cached, progress=False)
    return cached


def _load_url(
    url: str,
    map_location=None,
    model_dir: Optional[str] = None,
    name: Optional[str] = None,
):
    """The checkpoint at ``url`` (``name``: what the user wrote, when another scheme led
    here), read from torch hub's cache."""
    # as mmengine: local rank 0 downloads first, the other ranks read its file
    rank, world_size = get_dist_info()
    cached = _download(url, model_dir) if rank == 0 else None
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached = _download(url, model_dir)
    source = url if name is None else f'{name} = {url}'
    return safe_torch_load(cached, map_location=map_location, source=source)


def load_from_http(filename: str, map_location=None, model_dir=None):
    return _load_url(filename, map_location, model_dir)


def _model_url(filename: str, prefixes, urls: dict) -> str:
    prefix = next(p for p in prefixes if filename.startswith(p))
    name = filename[len(prefix) :]
    if name not in urls:
        raise KeyError(
            f'Checkpoint {filename!r}: {prefix} knows no model {name!r}. '
            f'Known names start with: {", ".join(sorted(urls)[:5])}, ...'
        )
    return urls[name]


def load_from_torchvision(filename: str, map_location=None):
    urls = mmengine_checkpoint.get_torchvision_models()
    url = _model_url(filename, ('modelzoo://', 'torchvision://'), urls)
    return _load_url(url, map_location, name=filename)


def load_from_openmmlab(filename: str, map_location=None):
    prefix = (
        'open-mmlab://'
        if filename.startswith('open-mmlab://')
        else 'openmmlab://'
    )
    name = filename[len(prefix) :]
    name = mmengine_checkpoint.get_deprecated_model_names().get(name, name)
    url = _model_url(
        prefix + name, (prefix,), mmengine_checkpoint.get_external_models()
    )
    if url.startswith(('http://', 'https://')):
        return _load_url(url, map_location, name=filename)
    # a file under MMENGINE_HOME, named by MMENGINE_HOME/open_mmlab.json
    path = osp.join(mmengine_checkpoint._get_mmengine_home(), url)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Checkpoint {filename!r}: {path} does not exist.'
        )
    return safe_torch_load(path, map_location=map_location, source=filename)


def load_from_mmcls(filename: str, map_location=None):
    url = _model_url(
        filename, ('mmcls://',), mmengine_checkpoint.get_mmcls_models()
    )
    checkpoint = _load_url(url, map_location, name=filename)
    return mmengine_checkpoint._process_mmcls_checkpoint(checkpoint)


def load_from_pavi(filename: str, map_location=None):
    try:
        from pavi import modelcloud
    except ImportError as error:
        raise ImportError(
            f'Checkpoint {filename!r}: install pavi to load from its model cloud.'
        ) from error
    model = modelcloud.get(filename[len('pavi://') :])
    with tempfile.TemporaryDirectory() as folder:
        downloaded = osp.join(folder, model.name)
        model.download(downloaded)
        return safe_torch_load(
            downloaded, map_location=map_location, source=filename
        )


def load_from_ceph(filename: str, map_location=None, backend: str = 'petrel'):
    from mmengine.fileio import get_file_backend

    file_backend = get_file_backend(
        filename, backend_args=dict(backend=backend)
    )
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return safe_torch_load(
            buffer, map_location=map_location, source=filename
        )


# every scheme mmengine's CheckpointLoader registers, with the loader that replaces it; named
# load_from_<backend> as mmengine's own, because CheckpointLoader logs "Loads checkpoint by
# <name without its first 10 characters> backend"
SAFE_LOADERS = {
    '': load_from_local,
    ('http://', 'https://'): load_from_http,
    'pavi://': load_from_pavi,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph,
    ('modelzoo://', 'torchvision://'): load_from_torchvision,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab,
    'mmcls://': load_from_mmcls,
}


def install_safe_checkpoint_loading() -> None:
    """Make mmengine load checkpoints of every scheme through :func:`safe_torch_load`.

    Idempotent."""
    for prefixes, loader in SAFE_LOADERS.items():
        CheckpointLoader.register_scheme(
            prefixes=prefixes, loader=loader, force=True
        )
