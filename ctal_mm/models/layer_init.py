"""How the layers that no pretrained file fills (neck, heads, decoder) start.

Two forms, chosen by ``MultiTaskEncoderDecoder(layer_init=...)``:

* ``'kaiming'``: what MMEngine's ``init_weights`` leaves: mmcv's ``ConvModule`` re-initialises
  its conv with Kaiming-normal (fan_out, ReLU gain) and its norm with weight 1, bias 0; plain
  ``nn.Conv2d`` / ``nn.Linear`` layers keep PyTorch's defaults; any ``init_cfg`` applies.
* ``'reference'``: every such layer as PyTorch builds it (``reset_parameters()``: Kaiming-uniform
  with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for conv and linear weights, the
  same bound for their biases; norm weight 1, bias 0), as the CTAL reference, which applies no
  init of its own to anything outside its ImageNet backbone (its HRNet's normal(std=0.001) init
  is overwritten by the ImageNet file).

The backbone is never touched: it comes from its ImageNet file (or its own init when trained
from scratch). Parameters of modules without ``reset_parameters`` (a learnt scalar, the
log-variances of uncertainty weighting) keep the value their module gave them.
"""

from typing import Iterable

from torch import nn

LAYER_INITS = ('kaiming', 'reference')


def check_layer_init(layer_init: str) -> str:
    if layer_init not in LAYER_INITS:
        raise ValueError(
            f'model.layer_init={layer_init!r}; expected one of {LAYER_INITS}: '
            "'reference' resets every layer outside the backbone to PyTorch's "
            "defaults (the CTAL reference), 'kaiming' keeps mmcv ConvModule's "
            'Kaiming-normal init.'
        )
    return layer_init


def reset_to_pytorch_defaults(
    module: nn.Module, skip: Iterable[nn.Module] = ()
) -> int:
    """``reset_parameters()`` on every submodule of ``module`` that has one, outside ``skip``.

    Returns the number of submodules reset.
    """
    skipped = {id(m) for s in skip for m in s.modules()}
    count = 0
    for sub in module.modules():
        if id(sub) in skipped:
            continue
        reset = getattr(sub, 'reset_parameters', None)
        if callable(reset):
            reset()
            count += 1
    return count
