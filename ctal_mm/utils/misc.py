"""Small helpers that several parts of ctal_mm need the same way."""

from typing import Iterable, Sequence, Tuple, Union

import numpy as np
import torch

# Where padding puts the image: the data preprocessor's pad_mode and the Pad transform's mode
PAD_MODES = ('bottom_right', 'centre')


def to_numpy(data: Union[np.ndarray, torch.Tensor, Sequence]) -> np.ndarray:
    """A tensor (detached, on the CPU) or array-like as a numpy array."""
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy()
    return np.asarray(data)


def as_pair(value: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    """``(h, w)`` from an int (both) or a pair; ``name`` is the argument, for the error."""
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise ValueError(f'{name}={value!r}; expected an int or (h, w).')
    return int(value[0]), int(value[1])


def few(items: Iterable, count: int = 4) -> str:
    """The first ``count`` items joined with commas, and how many there are when more, for
    error messages that must not list thousands of names."""
    items = list(items)
    more = f', ... ({len(items)} in all)' if len(items) > count else ''
    return ', '.join(map(str, items[:count])) + more


def padding_for(
    shape_hw: Tuple[int, int], target_hw: Tuple[int, int], mode: str
) -> Tuple[int, int, int, int]:
    """(left, right, top, bottom) that pads ``shape_hw`` to ``target_hw`` (never crops)."""
    if mode not in PAD_MODES:
        raise ValueError(f'pad mode {mode!r}; expected one of {PAD_MODES}.')
    extra_h = max(target_hw[0] - shape_hw[0], 0)
    extra_w = max(target_hw[1] - shape_hw[1], 0)
    if mode == 'centre':
        left, top = extra_w // 2, extra_h // 2
    else:
        left, top = 0, 0
    return left, extra_w - left, top, extra_h - top
