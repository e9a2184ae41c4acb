"""Morphological thinning of binary masks, for the PASCAL-Context edge maps.

The reference derives edges as ``thin(|Laplacian(LabelMap)| > 0)`` with scikit-image's ``thin``,
the two-subiteration parallel algorithm of Z. Guo and R. W. Hall, "Parallel thinning with
two-subiteration algorithms", Comm. ACM 32(3), 1989 (as presented by Lam, Lee and Suen, "Thinning
methodologies - a comprehensive survey", IEEE TPAMI 14(9), 1992). This module implements the same
algorithm with numpy so that ctal_mm needs no scikit-image: each subiteration removes, all at
once, the foreground pixels whose 8-neighbourhood satisfies the conditions G1, G2 and G3 (first
subiteration) or G3' (second), until nothing changes.

Neighbours are numbered x1..x8 counter-clockwise from east: x1 = E, x2 = NE, x3 = N, x4 = NW,
x5 = W, x6 = SW, x7 = S, x8 = SE; bit k-1 of a pixel's neighbourhood code is x_k.
"""

from functools import lru_cache
from typing import Tuple

import numpy as np

# (row offset, column offset) of x1..x8; evaluation/edge_counts.py thins with the same tables
NEIGHBOURS = (
    (0, 1),
    (-1, 1),
    (-1, 0),
    (-1, -1),
    (0, -1),
    (1, -1),
    (1, 0),
    (1, 1),
)


def _bits(code: int) -> Tuple[bool, ...]:
    return tuple(bool(code >> k & 1) for k in range(8))


def _removable(code: int, first: bool) -> bool:
    x = _bits(code)  # x[0] is x1 ... x[7] is x8
    # G1: exactly one of the four "x_{2i-1} = 0 and (x_{2i} or x_{2i+1})" transitions
    crossings = sum(
        1 for i in (0, 2, 4, 6) if not x[i] and (x[i + 1] or x[(i + 2) % 8])
    )
    if crossings != 1:
        return False
    # G2: 2 <= min(n1, n2) <= 3
    n1 = sum(1 for k in (0, 2, 4, 6) if x[k] or x[k + 1])
    n2 = sum(1 for k in (1, 3, 5, 7) if x[k] or x[(k + 1) % 8])
    if not 2 <= min(n1, n2) <= 3:
        return False
    if first:  # G3: (x2 or x3 or not x8) and x1 == 0
        return not ((x[1] or x[2] or not x[7]) and x[0])
    # G3': (x6 or x7 or not x4) and x5 == 0
    return not ((x[5] or x[6] or not x[3]) and x[4])


@lru_cache(maxsize=None)
def removal_tables() -> Tuple[np.ndarray, np.ndarray]:
    """Lookup tables (256 booleans each) of the two subiterations, by neighbourhood code."""
    first = np.array([_removable(c, True) for c in range(256)])
    second = np.array([_removable(c, False) for c in range(256)])
    return first, second


def neighbourhood_codes(mask: np.ndarray) -> np.ndarray:
    """Per pixel, the 8-bit code of its foreground neighbours (outside the image = background)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    h, w = mask.shape
    codes = np.zeros((h, w), dtype=np.uint8)
    for bit, (dy, dx) in enumerate(NEIGHBOURS):
        codes |= padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] << bit
    return codes


def thin(mask: np.ndarray, max_iter: int = None) -> np.ndarray:
    """Thin the foreground of a 2-D binary ``mask`` to one-pixel-wide lines.

    Args:
        mask: 2-D array, non-zero = foreground.
        max_iter: stop after this many iterations (default: until nothing changes).

    Returns:
        bool array of the same shape.
    """
    if mask.ndim != 2:
        raise ValueError(f'thin() takes a 2-D mask; got shape {mask.shape}.')
    skeleton = mask.astype(bool).copy()
    first, second = removal_tables()
    iteration = 0
    while max_iter is None or iteration < max_iter:
        before = int(skeleton.sum())
        for table in (first, second):
            skeleton &= ~table[neighbourhood_codes(skeleton)]
        iteration += 1
        if int(skeleton.sum()) == before:
            break
    return skeleton
