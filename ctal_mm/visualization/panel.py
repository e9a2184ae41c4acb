"""Composing titled tiles into one panel image (numpy and OpenCV only, no figure)."""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

BACKGROUND = (24, 24, 24)
TITLE_COLOUR = (235, 235, 235)
PLACEHOLDER_COLOUR = (48, 48, 48)


@dataclass
class Tile:
    """One titled picture of the panel.

    Attributes:
        title: the text above the picture, e.g. ``'depth gt'``.
        image: H x W x 3 uint8 RGB.
    """

    title: str
    image: np.ndarray


def title_height(tile_height: int) -> int:
    """Height in pixels of the title bar above a tile of ``tile_height`` rows."""
    return int(max(14, min(32, round(tile_height * 0.08))))


def gap_width(tile_height: int) -> int:
    """Pixels between neighbouring tiles."""
    return int(max(2, min(8, tile_height // 64)))


def placeholder(shape: Tuple[int, int], text: str) -> np.ndarray:
    """A gray tile of ``shape`` (H, W) saying ``text``, for a map the sample does not have."""
    tile = np.empty(shape + (3,), np.uint8)
    tile[:] = PLACEHOLDER_COLOUR
    _put_centred_text(tile, text, max(8, min(24, shape[0] // 8)))
    return tile


def _put_centred_text(canvas: np.ndarray, text: str, text_height: int):
    """Write ``text`` centred on ``canvas`` (in place), shrunk to fit its width."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = text_height / 22.0
    (w, h), _ = cv2.getTextSize(text, font, scale, 1)
    if w > canvas.shape[1] - 4:
        scale *= (canvas.shape[1] - 4) / max(w, 1)
        (w, h), _ = cv2.getTextSize(text, font, scale, 1)
    org = ((canvas.shape[1] - w) // 2, (canvas.shape[0] + h) // 2)
    cv2.putText(canvas, text, org, font, scale, TITLE_COLOUR, 1, cv2.LINE_AA)


def _titled(tile: Optional[Tile], height: int, width: int, bar: int):
    cell = np.empty((bar + height, width, 3), np.uint8)
    cell[:] = BACKGROUND
    if tile is None:
        return cell
    if tile.image.shape[:2] != (height, width):
        raise ValueError(
            f"Tile {tile.title!r} is {tile.image.shape[:2]}, the panel's "
            f'tiles are {(height, width)}: resize the maps to the image '
            'first.'
        )
    _put_centred_text(cell[:bar], tile.title, int(bar * 0.6))
    cell[bar:] = tile.image
    return cell


def compose_panel(
    rows: Sequence[Sequence[Optional[Tile]]],
    header: Optional[Tile] = None,
) -> np.ndarray:
    """Lay out equally sized tiles in a grid, each under its title, on a dark background.

    Args:
        rows: the grid, row by row; ``None`` leaves a cell empty. Rows shorter than the longest
            are padded with empty cells.
        header: a tile centred above the grid (the input image).

    Returns:
        H x W x 3 uint8 RGB panel, with ``H = n_rows * (tile_h + bar) + (n_rows + 1) * gap``
        (the header counting as a row) and ``W = n_cols * tile_w + (n_cols + 1) * gap``.
    """
    tiles = [t for row in rows for t in row if t is not None]
    if header is not None:
        tiles.append(header)
    if not tiles:
        raise ValueError('compose_panel needs at least one tile.')
    height, width = tiles[0].image.shape[:2]
    bar, gap = title_height(height), gap_width(height)
    n_cols = max([len(row) for row in rows] + [1])
    panel_width = n_cols * width + (n_cols + 1) * gap

    def spacer(h, w):
        out = np.empty((h, w, 3), np.uint8)
        out[:] = BACKGROUND
        return out

    bands: List[np.ndarray] = [spacer(gap, panel_width)]
    if header is not None:
        cell = _titled(header, height, width, bar)
        left = (panel_width - width) // 2
        band = spacer(cell.shape[0], panel_width)
        band[:, left : left + width] = cell
        bands += [band, spacer(gap, panel_width)]
    for row in rows:
        cells = [spacer(bar + height, gap)]
        for col in range(n_cols):
            tile = row[col] if col < len(row) else None
            cells += [
                _titled(tile, height, width, bar),
                spacer(bar + height, gap),
            ]
        bands += [np.concatenate(cells, axis=1), spacer(gap, panel_width)]
    return np.concatenate(bands, axis=0)
