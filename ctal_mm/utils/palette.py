"""Distinct, deterministic colours for class palettes."""

import colorsys
from typing import Iterable, List, Tuple

GOLDEN_RATIO_STEP = 0.618033988749895


def spread_hues(
    count: int, step: float = GOLDEN_RATIO_STEP, offset: float = 0.0
) -> List[float]:
    """``count`` hues in [0, 1): stepping by the golden ratio puts neighbouring class ids on
    far-apart hues, and no two ids on the same one."""
    return [(offset + i * step) % 1.0 for i in range(count)]


def hsv_palette(hsv: Iterable[Tuple[float, float, float]]) -> List[List[int]]:
    """``[r, g, b]`` in 0-255 of each ``(hue, saturation, value)`` in [0, 1]."""
    return [
        [round(c * 255) for c in colorsys.hsv_to_rgb(h, s, v)]
        for h, s, v in hsv
    ]
