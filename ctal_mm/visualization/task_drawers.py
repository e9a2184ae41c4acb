"""How task maps are drawn: drawer functions registered by name.

Each task kind names its drawer (:attr:`ctal_mm.structures.TaskKind.drawer`, by default the
kind's own name): ``segmentation``, ``depth``, ``normals``, and ``gray_probability`` for edge and
saliency. A drawer receives the sample's image and the maps of one task (ground truth and/or
prediction, already numpy C x H x W arrays at the image's size, following the conventions of
:mod:`ctal_mm.structures.task_kinds`) and returns one RGB uint8 tile per map. Drawing gt and pred
together lets a drawer give both the same scale (depth shares one value range per sample).

A new task kind that no drawer fits is one function, registered under the kind's name::

    @register_task_drawer('my_kind')
    def draw_my_kind(image, maps, style):
        return TaskDrawing({role: ... for role, m in maps.items()})
"""

import colorsys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Dict, Optional, Sequence

import cv2
import numpy as np

from ctal_mm.structures import IGNORE_INDEX

# Colour of pixels without a label in segmentation, depth and normals tiles.
NO_LABEL_COLOUR = (0, 0, 0)
# Gray-level tiles (edge, saliency) use black for "0", so their ignored pixels need a colour
# that no gray level has.
GRAY_MAP_IGNORE_COLOUR = (110, 0, 110)


@dataclass
class DrawStyle:
    """What a drawer needs to know about one task besides its maps.

    Attributes:
        task: the task's name, for error messages.
        palette: K x 3 uint8 colours of the classes (segmentation), or None for generated ones.
        classes: class names (segmentation), or None.
        alpha: opacity of the colour overlay on the image (segmentation).
        with_labels: write class names on the segmentation tiles.
        colormap: matplotlib colormap name for scalar maps (depth).
    """

    task: str
    palette: Optional[np.ndarray] = None
    classes: Optional[Sequence[str]] = None
    alpha: float = 0.6
    with_labels: bool = True
    colormap: str = 'viridis'


@dataclass
class TaskDrawing:
    """A drawer's result.

    Attributes:
        tiles: role ('gt' or 'pred') -> H x W x 3 uint8 RGB tile.
        note: a short text for the tile titles, e.g. the value range of a colour map.
        extra: anything else worth knowing about the drawing (depth: its ``range``).
    """

    tiles: Dict[str, np.ndarray]
    note: str = ''
    extra: dict = field(default_factory=dict)


Drawer = Callable[[np.ndarray, Dict[str, np.ndarray], DrawStyle], TaskDrawing]

# A plain table, not an mmengine Registry: a name here is a task kind's
# ``drawer``, looked up
# as is; nothing is built from a config's type=, so a Registry's scopes and
# builders would go unused.
TASK_DRAWERS: Dict[str, Drawer] = {}


def register_task_drawer(name: str, force: bool = False):
    """Register ``fn(image, maps, style) -> TaskDrawing`` as the drawer called ``name`` (the
    ``drawer`` a :class:`~ctal_mm.structures.TaskKind` names; by default its kind's name)."""

    def _register(fn: Drawer) -> Drawer:
        if name in TASK_DRAWERS and not force:
            raise KeyError(
                f'Drawer name {name!r} already has a drawer '
                f'({TASK_DRAWERS[name].__name__}); pass force=True to '
                'replace it.'
            )
        TASK_DRAWERS[name] = fn
        return fn

    return _register


def get_task_drawer(name: str) -> Drawer:
    """The drawer called ``name`` (a task kind's ``drawer``)."""
    if name not in TASK_DRAWERS:
        raise KeyError(
            f'No drawer {name!r} (a task kind names its drawer in '
            f'TaskKind.drawer); registered drawers: {sorted(TASK_DRAWERS)}. '
            'Register one with @ctal_mm.visualization.register_task_drawer'
            f'({name!r}).'
        )
    return TASK_DRAWERS[name]


def generated_palette(num_colours: int) -> np.ndarray:
    """``num_colours`` x 3 uint8 distinct, deterministic colours, none of them black.

    Hues step by the golden ratio so that neighbouring class ids get far-apart hues; saturation
    and value cycle so that colours whose hues come close again still differ.
    """
    golden = 0.618033988749895
    colours = []
    for i in range(num_colours):
        hue = (0.1 + i * golden) % 1.0
        saturation = (0.85, 0.6, 0.95)[i % 3]
        value = (0.95, 0.8, 0.65)[(i // 3) % 3]
        rgb = colorsys.hsv_to_rgb(hue, saturation, value)
        colours.append([round(c * 255) for c in rgb])
    return np.asarray(colours, dtype=np.uint8).reshape(-1, 3)


def complete_palette(
    palette: Optional[np.ndarray], num_colours: int
) -> np.ndarray:
    """``palette`` (or nothing) extended with generated colours to ``num_colours`` rows."""
    given = (
        np.zeros((0, 3), np.uint8)
        if palette is None
        else np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    )
    if len(given) >= num_colours:
        return given
    extra = generated_palette(num_colours)[len(given) :]
    return np.concatenate([given, extra], axis=0)


@lru_cache(maxsize=8)
def colormap_lut(name: str) -> np.ndarray:
    """256 x 3 uint8 lookup table of a matplotlib colormap."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise KeyError(
            f'Unknown colormap {name!r} for MultiTaskVisualizer(colormap=...)'
            "; use a matplotlib colormap name such as 'viridis', 'magma', "
            "'turbo'."
        ) from None
    lut = cmap(np.linspace(0.0, 1.0, 256))[:, :3]
    return np.round(lut * 255).astype(np.uint8)


def _single_channel(task: str, role: str, data: np.ndarray, kind: str):
    if data.ndim != 3 or data.shape[0] != 1:
        raise ValueError(
            f'{role}_{task} has shape {tuple(data.shape)}; the {kind} drawer '
            'expects 1 x H x W (the conventions in '
            'ctal_mm/structures/task_kinds.py). Convert the model output in '
            "its head's predict step."
        )
    return data[0]


@register_task_drawer('segmentation')
def draw_segmentation(
    image: np.ndarray, maps: Dict[str, np.ndarray], style: DrawStyle
) -> TaskDrawing:
    """Class colours blended over the image; ignored pixels (255) black."""
    labels = {
        role: _single_channel(style.task, role, m, 'segmentation').astype(
            np.int64
        )
        for role, m in maps.items()
    }
    valid_ids = [
        lab[(lab != IGNORE_INDEX) & (lab >= 0)] for lab in labels.values()
    ]
    highest = max((int(v.max()) for v in valid_ids if v.size), default=-1)
    num_needed = max(
        highest + 1, 0 if style.palette is None else len(style.palette)
    )
    palette = complete_palette(style.palette, num_needed)
    base = image.astype(np.float32) * (1.0 - style.alpha)
    tiles = {}
    for role, lab in labels.items():
        valid = (lab != IGNORE_INDEX) & (lab >= 0)
        colour = np.zeros(lab.shape + (3,), np.float32)
        colour[valid] = palette[lab[valid]]
        tile = np.where(
            valid[..., None], base + colour * style.alpha, NO_LABEL_COLOUR
        )
        tile = np.clip(np.round(tile), 0, 255).astype(np.uint8)
        if style.with_labels:
            tile = _write_class_names(tile, lab, valid, palette, style.classes)
        tiles[role] = tile
    return TaskDrawing(tiles)


def _write_class_names(tile, labels, valid, palette, classes):
    """Write each class's name at the pixel deepest inside its region.

    Regions too thin to hold a word are left unlabelled, so small tiles stay readable.
    """
    height = tile.shape[0]
    scale = max(0.3, min(0.6, height / 600))
    thickness = 1
    out = np.ascontiguousarray(tile)
    for class_id in np.unique(labels[valid]):
        name = (
            str(classes[class_id])
            if classes is not None and class_id < len(classes)
            else str(int(class_id))
        )
        mask = np.pad((labels == class_id).astype(np.uint8), 1)
        depth = cv2.distanceTransform(mask, cv2.DIST_L2, 3)[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        (w, h), base = cv2.getTextSize(
            name, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness
        )
        if depth[y, x] < max(h, 4):
            continue
        org = (int(x - w / 2), int(y + h / 2))
        colour = tuple(int(c) for c in palette[class_id])
        # a dark outline under the name keeps it readable on any class colour
        for text_colour, text_thickness in (
            ((0, 0, 0), thickness + 2),
            (_bright(colour), thickness),
        ):
            cv2.putText(
                out,
                name,
                org,
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                text_colour,
                text_thickness,
                cv2.LINE_AA,
            )
    return out


def _bright(colour):
    """The class colour lifted towards white, readable over the dark outline."""
    return tuple(int(255 - (255 - c) * 0.35) for c in colour)


@register_task_drawer('depth')
def draw_depth(
    image: np.ndarray, maps: Dict[str, np.ndarray], style: DrawStyle
) -> TaskDrawing:
    """Depth through a colour map, one value range for gt and pred; invalid pixels black.

    Invalid are ground-truth pixels at 0 (no measurement) and any non-finite value. The range
    spans the valid values of both maps, so the same colour means the same depth in both tiles.
    """
    depths = {
        role: _single_channel(style.task, role, m, 'depth').astype(np.float32)
        for role, m in maps.items()
    }
    valid = {
        role: np.isfinite(d) & ((d > 0) if role == 'gt' else True)
        for role, d in depths.items()
    }
    values = [d[valid[role]] for role, d in depths.items()]
    values = [v for v in values if v.size]
    if values:
        low = float(min(v.min() for v in values))
        high = float(max(v.max() for v in values))
    else:
        low, high = 0.0, 1.0
    span = max(high - low, 1e-6)
    lut = colormap_lut(style.colormap)
    tiles = {}
    for role, d in depths.items():
        scaled = np.clip((np.nan_to_num(d) - low) / span, 0.0, 1.0)
        tile = lut[np.round(scaled * 255).astype(np.int64)]
        tile[~valid[role]] = NO_LABEL_COLOUR
        tiles[role] = tile
    note = f'{low:.2f}-{high:.2f} m' if values else 'no valid depth'
    return TaskDrawing(tiles, note=note, extra=dict(range=(low, high)))


@register_task_drawer('normals')
def draw_normals(
    image: np.ndarray, maps: Dict[str, np.ndarray], style: DrawStyle
) -> TaskDrawing:
    """Unit vectors as colours, RGB = (n + 1) / 2 * 255; all-zero (invalid) vectors black."""
    tiles = {}
    for role, normals in maps.items():
        if normals.ndim != 3 or normals.shape[0] != 3:
            raise ValueError(
                f'{role}_{style.task} has shape {tuple(normals.shape)}; the '
                'normals drawer expects 3 x H x W unit vectors (the '
                'conventions in ctal_mm/structures/task_kinds.py).'
            )
        vectors = np.moveaxis(normals.astype(np.float32), 0, -1)
        finite = np.isfinite(vectors).all(axis=-1)
        vectors = np.nan_to_num(vectors)
        valid = finite & (vectors != 0).any(axis=-1)
        rgb = np.floor((np.clip(vectors, -1.0, 1.0) + 1.0) * 127.5 + 0.5)
        tile = rgb.astype(np.uint8)
        tile[~valid] = NO_LABEL_COLOUR
        tiles[role] = tile
    return TaskDrawing(tiles)


@register_task_drawer('gray_probability')
def draw_gray_probability(
    image: np.ndarray, maps: Dict[str, np.ndarray], style: DrawStyle
) -> TaskDrawing:
    """Binary ground truth or probability as gray levels (0 black, 1 white).

    Ground-truth pixels at 255 (ignored) get ``GRAY_MAP_IGNORE_COLOUR``.
    """
    tiles = {}
    for role, m in maps.items():
        values = _single_channel(style.task, role, m, 'gray-level').astype(
            np.float32
        )
        ignored = values == IGNORE_INDEX if role == 'gt' else None
        gray = np.clip(np.nan_to_num(values), 0.0, 1.0)
        gray = np.round(gray * 255).astype(np.uint8)
        tile = np.repeat(gray[..., None], 3, axis=-1)
        if ignored is not None:
            tile[ignored] = GRAY_MAP_IGNORE_COLOUR
        tiles[role] = tile
    return TaskDrawing(tiles)
