"""Loading weights into a model so that a wrong file stops the run instead of half-loading.

MMEngine's ``load_checkpoint(strict=False)`` logs every missing, unexpected and mismatched key
and goes on with a partly random model; its ``strict=True`` raises with hundreds of lines. Here
the comparison is done once, up front, and the error names the first few keys of each kind, how
many there are, and the likely cause. Every user of a checkpoint (tools/test.py, ``load_from``,
``--resume``, the inference API, pretrained backbones) goes through :func:`check_state_dict`:
the Runner's loads (``load_from``, ``--resume``, tools/test.py) through ctal_mm's
CheckpointHook, which calls :func:`check_checkpoint_fits` when a checkpoint has been read and
before any weight or optimiser state is copied, unless the config sets ``load_strict = False``
(``--non-strict``).
"""

from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

# How many keys of each kind an error names before it says "and N more".
_NAMED_KEYS = 4


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not fit the model (missing, unexpected or reshaped keys)."""


def compare_state_dict(
    expected: Mapping[str, torch.Tensor],
    state_dict: Mapping[str, torch.Tensor],
) -> Tuple[List[str], List[str], List[Tuple[str, tuple, tuple]]]:
    """``(missing, unexpected, mismatched)`` keys of ``state_dict`` against ``expected``.

    ``mismatched`` holds ``(key, shape in the file, shape in the model)``.
    """
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        (k, tuple(state_dict[k].shape), tuple(v.shape))
        for k, v in expected.items()
        if k in state_dict
        and hasattr(state_dict[k], 'shape')
        and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    return missing, unexpected, mismatched


def _named(keys: List, what: str) -> str:
    shown = ', '.join(str(k) for k in keys[:_NAMED_KEYS])
    more = len(keys) - _NAMED_KEYS
    return f'{len(keys)} {what} ({shown}{f", and {more} more" if more > 0 else ""})'


def check_state_dict(
    expected: Mapping[str, torch.Tensor],
    state_dict: Mapping[str, torch.Tensor],
    source: str,
    what: str = 'the model',
    hint: str = '',
) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state_dict`` fills ``expected`` exactly.

    Args:
        expected: the target's state dict (``model.state_dict()``).
        state_dict: the weights read from ``source``.
        source: the file or URL, named in the message.
        what: what is being loaded, e.g. ``'the model'`` or ``'the backbone'``.
        hint: how to fix it, appended to the message.
    """
    missing, unexpected, mismatched = compare_state_dict(expected, state_dict)
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if mismatched:
        parts.append(
            _named(
                [
                    f'{k}: {f} in the file, {m} in the model'
                    for k, f, m in mismatched
                ],
                'keys of another shape',
            )
        )
    if missing:
        parts.append(_named(missing, 'keys missing from the file'))
    if unexpected:
        parts.append(_named(unexpected, 'keys the model does not have'))
    raise CheckpointMismatchError(
        f'{source} does not fit {what}: '
        + '; '.join(parts)
        + '. It is most likely a checkpoint of another model or config (another backbone, '
        'task set, number of classes or input size).'
        + (f' {hint}' if hint else '')
    )


def model_state_dict(checkpoint: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """The model weights of a loaded checkpoint: its ``state_dict`` (or the mapping itself),
    without the ``module.`` prefix a wrapped model adds."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise CheckpointMismatchError(
            f'the checkpoint holds no state dict (its "state_dict" is a '
            f'{type(state_dict).__name__})'
        )
    return OrderedDict(
        (k[len('module.') :] if k.startswith('module.') else k, v)
        for k, v in state_dict.items()
    )


NON_STRICT_HINT = (
    'Pass the checkpoint of this config, or load it non-strictly '
    '(--non-strict, or load_strict = False in the config) if you mean to load only the '
    'keys that fit.'
)


def _unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    # the model whose keys a checkpoint holds: DDP and TTA wrappers keep it as .module,
    # as mmengine's own load_state_dict unwraps them
    if is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        return model.module
    return model


def check_checkpoint_fits(
    model: torch.nn.Module,
    checkpoint: Mapping,
    source: str,
    hint: str = NON_STRICT_HINT,
) -> None:
    """:func:`check_state_dict` of a loaded checkpoint against ``model`` (or the model a
    wrapper holds): raise :class:`CheckpointMismatchError` unless its weights fit exactly."""
    target = _unwrapped(model)
    check_state_dict(
        target.state_dict(), model_state_dict(checkpoint), source, hint=hint
    )


def load_model_weights(
    model: torch.nn.Module,
    filename: str,
    strict: bool = True,
    map_location='cpu',
    logger: Optional[str] = 'current',
) -> Dict:
    """Load ``filename`` (a path or URL, read through mmengine's safe loaders) into ``model``.

    With ``strict`` (the default) any missing, unexpected or reshaped key raises
    :class:`CheckpointMismatchError` before a single weight is copied. Without it, mmengine's
    usual warnings are logged and the keys that fit are loaded. Returns the whole checkpoint
    (meta, optimizer state) for callers that need more than the weights.
    """
    checkpoint = CheckpointLoader.load_checkpoint(
        filename, map_location=map_location
    )
    if not isinstance(checkpoint, Mapping):
        raise CheckpointMismatchError(
            f'{filename} holds a {type(checkpoint).__name__}, not a checkpoint dict'
        )
    if strict:
        check_checkpoint_fits(model, checkpoint, filename)
    state_dict = model_state_dict(checkpoint)
    load_state_dict(_unwrapped(model), state_dict, strict=False, logger=logger)
    return checkpoint
