"""Mixed precision without a loss scaler, on any device (bf16 on CPU)."""

from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast

from ctal_mm.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """Runs the forward pass under ``torch.autocast`` in ``dtype``.

    mmengine's ``AmpOptimWrapper`` requires CUDA (it pairs fp16 with a loss scaler). bfloat16 has
    float32's exponent range, so it needs no loss scaling and works on CPU too: this wrapper is
    what ``tools/train.py --amp`` uses when no GPU is present.

    Args:
        dtype: autocast dtype, ``'bfloat16'`` (default) or ``'float16'`` (GPU only).
        **kwargs: the arguments of :class:`OptimWrapper`.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs):
        super().__init__(**kwargs)
        if dtype not in ('bfloat16', 'float16'):
            raise ValueError(
                f"AutocastOptimWrapper: dtype must be 'bfloat16' or 'float16', got {dtype!r}."
            )
        self.cast_dtype = getattr(torch, dtype)

    @contextmanager
    def optim_context(self, model: nn.Module):
        device_type = next(model.parameters()).device.type
        with (
            super().optim_context(model),
            autocast(device_type=device_type, dtype=self.cast_dtype),
        ):
            yield
