"""Activation checkpointing that leaves a module's state as one forward would.

``checkpointed(module, *inputs)`` keeps only the inputs of ``module`` (a
module, or a bound method of one) for the backward pass and runs it again
there. ``torch.utils.checkpoint``
alone would update BatchNorm's running statistics twice per step (once in
each forward); here the recomputation restores the module's buffers
afterwards, so a checkpointed model trains exactly as an unchecked one.
"""

from contextlib import contextmanager, nullcontext

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint


@contextmanager
def _buffers_restored(module: nn.Module):
    saved = [(buffer, buffer.clone()) for buffer in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def checkpointed(function, *args, **kwargs):
    """``function(*args, **kwargs)``, recomputed in backward instead of kept.

    ``function`` is a module or a bound method of one: that module's buffers
    are restored after the recomputation. Without gradients (evaluation)
    this is a plain call.
    """
    if not torch.is_grad_enabled():
        return function(*args, **kwargs)
    module = getattr(function, '__self__', function)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f'checkpointed() needs a module or a bound method of one, got '
            f'{function!r}.'
        )
    return checkpoint(
        function,
        *args,
        use_reentrant=False,
        context_fn=lambda: (nullcontext(), _buffers_restored(module)),
        **kwargs,
    )
