"""Reading the checkpoint files the official codes save.

They hold the state dict bare, or under ``model`` or ``state_dict``, with
DataParallel's ``module.`` prefix or without; tensors only, so they load
with ``weights_only`` (``--trust-pickle`` for files that pickle more).
"""

import os.path as osp
from typing import Dict

import torch

from ctal_mm.utils.compat import UnsafeCheckpointError, safe_torch_load


class OfficialFileError(ValueError):
    """The file is missing, unsafe, or holds no state dict."""


def read_official_state_dict(
    path: str, trust_pickle: bool = False
) -> Dict[str, torch.Tensor]:
    """The state dict of an official checkpoint, without ``module.``."""
    if not osp.isfile(path):
        raise OfficialFileError(f'{path!r} does not exist.')
    if trust_pickle:
        checkpoint = torch.load(path, map_location='cpu', weights_only=False)
    else:
        try:
            checkpoint = safe_torch_load(path, map_location='cpu')
        except UnsafeCheckpointError as err:
            raise OfficialFileError(f'{err}\nOr pass --trust-pickle.') from err
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint, dict) and isinstance(
            checkpoint.get(key), dict
        ):
            checkpoint = checkpoint[key]
            break
    if not isinstance(checkpoint, dict) or not all(
        torch.is_tensor(v) for v in checkpoint.values()
    ):
        raise OfficialFileError(
            f'{path!r} holds no state dict (a dict of tensors, bare or under '
            '"model" or "state_dict").'
        )
    return {
        (k[len('module.') :] if k.startswith('module.') else k): v
        for k, v in checkpoint.items()
    }
