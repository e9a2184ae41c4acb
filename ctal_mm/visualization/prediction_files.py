"""Prediction files: one set per image and task, each readable back into the prediction.

Each task kind names its file format (:attr:`ctal_mm.structures.TaskKind.prediction_format`);
the formats are the writers of :data:`PREDICTION_WRITERS`: ``class_ids`` (segmentation),
``depth``, ``unit_vectors`` (normals), ``probability`` (edge, saliency). Under ``out_dir``, for an
image named ``<stem>`` (a file's name without its extension, or the index of an array input as
``000000``)::

    <task>/<stem>.png          class_ids: class ids, 1 channel (uint8; uint16 above 256
                               classes); probability: probability x 255, uint8
    <task>/<stem>_color.png    class_ids: the dataset's palette colours (RGB)
                               depth: the visualiser's colour map (a picture, not data)
    <task>/<stem>.npy          depth: float32 metres, H x W; unit_vectors: float32 H x W x 3
    <task>/<stem>_mm.png       depth: uint16 millimetres (0 .. 65.535 m)
    <task>/<stem>_rgb.png      unit_vectors: RGB = (n + 1) / 2 x 255 (x right, y, z as channels)
    panel/<stem>.png           the visualiser's panel (image and every task)

:func:`read_prediction_file` turns each data file back into the ``pred_<task>`` tensor's
values (exactly for ``.npy`` and label PNGs; to the file's quantisation otherwise: 1 mm,
1/255 of a probability, 1/127.5 of a normal component).
"""

import os
import os.path as osp
from typing import Callable, Dict, List, Mapping, Optional

import cv2
import numpy as np

from ctal_mm.structures import (
    MultiTaskDataSample,
    class_palette,
    get_task_kind,
    task_kind,
    task_kinds_of,
)
from ctal_mm.utils.misc import to_numpy

from .task_drawers import (
    DrawStyle,
    complete_palette,
    draw_depth,
    draw_normals,
)

MAX_DEPTH_MM = 65535


def _write(path: str, image: np.ndarray) -> str:
    if not cv2.imwrite(path, image):
        raise OSError(f'could not write {path} (disk full or not writable?)')
    return path


def _rgb_to_bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1])


def task_palette(
    task: str, num_classes: int, dataset_meta: Optional[Mapping]
) -> np.ndarray:
    """The colours of ``task``'s classes: the dataset's (``<task>_palette``, or ``palette``
    for semseg), completed with the visualiser's generated colours."""
    palette = class_palette(dataset_meta, task)
    return complete_palette(
        None if palette is None else np.asarray(palette), num_classes
    )


# (pred C x H x W numpy, base path without extension, task, dataset_meta, num_classes of
# the task or None, colormap) -> the files written
PredictionWriter = Callable[..., List[str]]
# A plain table, not an mmengine Registry: a name here is a task kind's
# ``prediction_format``, looked up
# as is; nothing is built from a config's type=, so a Registry's scopes and
# builders would go unused.
PREDICTION_WRITERS: Dict[str, PredictionWriter] = {}


def register_prediction_writer(name: str, force: bool = False):
    """Register ``fn(pred, base, task, dataset_meta, num_classes, colormap) -> files`` as the
    file format called ``name`` (a task kind's ``prediction_format``)."""

    def _register(fn: PredictionWriter) -> PredictionWriter:
        if name in PREDICTION_WRITERS and not force:
            raise KeyError(
                f'Prediction format {name!r} is already registered '
                f'({PREDICTION_WRITERS[name].__name__}); pass force=True.'
            )
        PREDICTION_WRITERS[name] = fn
        return fn

    return _register


@register_prediction_writer('class_ids')
def write_class_ids(pred, base, task, dataset_meta, num_classes, colormap):
    labels = pred[0]
    classes = num_classes if num_classes is not None else int(labels.max()) + 1
    dtype = np.uint8 if classes <= 256 else np.uint16
    files = [_write(base + '.png', labels.astype(dtype))]
    palette = task_palette(task, max(classes, labels.max() + 1), dataset_meta)
    files.append(_write(base + '_color.png', _rgb_to_bgr(palette[labels])))
    return files


@register_prediction_writer('depth')
def write_depth(pred, base, task, dataset_meta, num_classes, colormap):
    depth = pred[0].astype(np.float32)
    np.save(base + '.npy', depth)
    files = [base + '.npy']
    mm = np.clip(np.round(depth * 1000.0), 0, MAX_DEPTH_MM)
    files.append(_write(base + '_mm.png', mm.astype(np.uint16)))
    tile = draw_depth(
        None, {'pred': pred}, DrawStyle(task, colormap=colormap)
    ).tiles['pred']
    files.append(_write(base + '_color.png', _rgb_to_bgr(tile)))
    return files


@register_prediction_writer('unit_vectors')
def write_unit_vectors(pred, base, task, dataset_meta, num_classes, colormap):
    vectors = np.moveaxis(pred.astype(np.float32), 0, -1)
    np.save(base + '.npy', vectors)
    tile = draw_normals(None, {'pred': pred}, DrawStyle(task)).tiles['pred']
    return [base + '.npy', _write(base + '_rgb.png', _rgb_to_bgr(tile))]


@register_prediction_writer('probability')
def write_probability(pred, base, task, dataset_meta, num_classes, colormap):
    prob = np.clip(pred[0].astype(np.float32), 0.0, 1.0)
    gray = np.round(prob * 255.0).astype(np.uint8)
    return [_write(base + '.png', gray)]


def write_prediction_files(
    sample: MultiTaskDataSample,
    out_dir: str,
    stem: str,
    dataset_meta: Optional[Mapping] = None,
    num_classes: Optional[Mapping[str, int]] = None,
    colormap: str = 'viridis',
) -> Dict[str, List[str]]:
    """Write every ``pred_<task>`` of ``sample`` under ``out_dir`` (see the module docstring).

    Args:
        sample: predictions at the image's size.
        out_dir: the root directory.
        stem: the image's name in the file names.
        dataset_meta: palettes (``<task>_palette``, ``palette``) and ``task_kinds``.
        num_classes: classes per task of a kind with classes (the palette's length).
        colormap: of the depth colour picture.

    Returns:
        task -> the files written.
    """
    kinds = task_kinds_of(sample.metainfo, dataset_meta)
    written = {}
    for task in sample.pred_tasks:
        kind = get_task_kind(task, kinds)
        if kind.prediction_format is None:
            continue
        if kind.prediction_format not in PREDICTION_WRITERS:
            raise KeyError(
                f'Task {task!r}: kind {kind.name!r} names prediction format '
                f'{kind.prediction_format!r}, which is not registered; '
                f'registered: {sorted(PREDICTION_WRITERS)}.'
            )
        pred = to_numpy(sample.pred(task))
        base = osp.join(out_dir, task, stem)
        os.makedirs(osp.dirname(base), exist_ok=True)
        written[task] = PREDICTION_WRITERS[kind.prediction_format](
            pred,
            base,
            task,
            dataset_meta,
            (num_classes or {}).get(task),
            colormap,
        )
    return written


def read_prediction_file(
    path: str, kind: str, palette: Optional[np.ndarray] = None
) -> np.ndarray:
    """A file :func:`write_prediction_files` wrote -> the prediction's values.

    Returns C x H x W as ``pred_<task>``: class ids (int64), depth in metres or normals, or
    probabilities (float32). ``_color.png`` files of segmentation decode through ``palette``
    (the colours :func:`task_palette` gives).
    """
    labels = task_kind(kind).prediction_format == 'class_ids'
    if path.endswith('.npy'):
        array = np.load(path, allow_pickle=False).astype(np.float32)
        return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f'{path}: not a PNG written by ctal_mm')
    if path.endswith('_color.png'):
        if not labels or palette is None:
            raise ValueError(
                f'{path}: only segmentation colour files decode (with their palette); '
                'colour-mapped depth is a picture.'
            )
        rgb = image[..., ::-1].astype(np.int64)
        codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        palette = np.asarray(palette, np.int64)
        keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
        order = np.argsort(keys, kind='stable')
        index = np.searchsorted(keys[order], codes)
        return order[np.clip(index, 0, len(order) - 1)][None].astype(np.int64)
    if path.endswith('_mm.png'):
        return (image.astype(np.float32) / 1000.0)[None]
    if path.endswith('_rgb.png'):
        rgb = image[..., ::-1].astype(np.float32)
        return np.moveaxis(rgb / 127.5 - 1.0, -1, 0)
    if labels:
        return image.astype(np.int64)[None]
    return (image.astype(np.float32) / 255.0)[None]
