"""Loading transforms: read an image and its task maps into ``results`` in ctal_mm's convention.

A dataset lists, per sample, ``img_path``, ``task_kinds`` (task -> kind) and ``ann_info``: for each
task a dict ``dict(decoder=NAME, path=FILE, **options)``. :class:`LoadMultiTaskAnnotations` calls
the decoder registered under ``NAME`` (see :func:`register_gt_decoder`), which reads the file(s)
and returns the map in the convention of :mod:`ctal_mm.structures.task_kinds`: label maps uint8
H x W with 255 = ignore, depth float32 H x W with 0 = invalid, normals float32 H x W x 3 with
all-zero = invalid (unit vectors, or the stored values with ``normals_gt='stored'``, see
:func:`normals_as`). A new dataset format is a new decoder, not a new transform.
"""

from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from ctal_mm.registry import TRANSFORMS
from ctal_mm.structures import IGNORE_INDEX, get_task_kind, task_kind

from ..file_io import (
    DataFileError,
    check_max_depth,
    check_shape,
    read_npy,
    read_pil,
)

# A plain table, not an mmengine Registry: a name here is a ground-truth
# file's decoder name (LoadMultiTaskAnnotations), looked up
# as is; nothing is built from a config's type=, so a Registry's scopes and
# builders would go unused.
GT_DECODERS: Dict[str, Callable[..., np.ndarray]] = {}


def register_gt_decoder(name: str) -> Callable:
    """Register a function ``fn(path, shape, **options) -> np.ndarray`` as decoder ``name``.

    ``shape`` is the (H, W) of the sample's image; the decoder must return a map of that size in
    the convention of the task's kind, or raise :class:`DataFileError` naming the file.
    """

    def register(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        if name in GT_DECODERS:
            raise KeyError(f'A ground-truth decoder {name!r} exists already.')
        GT_DECODERS[name] = fn
        return fn

    return register


def labels_to_uint8(
    labels: np.ndarray,
    path: str,
    num_classes: int,
    ignore_values: Sequence[int] = (IGNORE_INDEX,),
) -> np.ndarray:
    """Class ids ``0..num_classes-1`` as uint8, every value of ``ignore_values`` mapped to 255.

    Raises:
        DataFileError: non-integer, non-finite or out-of-range values (listed in the message).
    """
    what = (
        f'class ids 0..{num_classes - 1} with ignore value(s) '
        f'{sorted(set(ignore_values))}'
    )
    if np.issubdtype(labels.dtype, np.floating):
        if not np.isfinite(labels).all():
            raise DataFileError(
                f'{path}: contains NaN or infinite values; expected {what}.'
            )
        if not (labels == np.round(labels)).all():
            raise DataFileError(
                f'{path}: contains non-integer values; expected {what}.'
            )
    ignore = np.isin(labels, list(ignore_values))
    valid = ((labels >= 0) & (labels < num_classes)) | ignore
    if not valid.all():
        bad = np.unique(labels[~valid])[:8].tolist()
        raise DataFileError(
            f'{path}: contains value(s) {bad}; expected {what}. Check the '
            "dataset's number of classes or the file."
        )
    out = np.where(ignore, IGNORE_INDEX, labels).astype(np.uint8)
    return out


def _squeeze_channel(array: np.ndarray) -> np.ndarray:
    """H x W x 1 -> H x W (the MTAN label and depth files carry a trailing 1 or not)."""
    if array.ndim == 3 and array.shape[2] == 1:
        return array[..., 0]
    return array


@register_gt_decoder('npy_label')
def decode_npy_label(
    path: str,
    shape: Tuple[int, int],
    num_classes: int,
    ignore_values: Sequence[int] = (-1, IGNORE_INDEX),
) -> np.ndarray:
    """An MTAN label .npy (float class ids, -1 = ignore) as uint8 with 255 = ignore."""
    what = f'a {shape[0]} x {shape[1]} label map (classes 0..{num_classes - 1}, -1 = ignore)'
    labels = _squeeze_channel(read_npy(path, what))
    check_shape(labels, path, what, shape)
    return labels_to_uint8(labels, path, num_classes, ignore_values)


@register_gt_decoder('npy_depth')
def decode_npy_depth(
    path: str, shape: Tuple[int, int], max_depth: Optional[float] = None
) -> np.ndarray:
    """An MTAN depth .npy (H x W or H x W x 1, 0 = invalid) as float32 H x W; values
    above ``max_depth`` (None: no check) are refused."""
    what = f'a {shape[0]} x {shape[1]} (x 1) depth map, >= 0, 0 = invalid'
    depth = _squeeze_channel(read_npy(path, what))
    check_shape(depth, path, what, shape)
    depth = depth.astype(np.float32)
    if not np.isfinite(depth).all():
        raise DataFileError(
            f'{path}: contains NaN or infinite depths; expected {what} (mark '
            'missing depth with 0).'
        )
    if (depth < 0).any():
        raise DataFileError(
            f'{path}: contains negative depths (min {depth.min():.4g}); '
            f'expected {what}.'
        )
    return check_max_depth(depth, path, what, max_depth)


def unit_normals(normals: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``normals`` (H x W x 3) scaled to unit length; vectors shorter than ``eps`` become 0."""
    norm = np.linalg.norm(normals, axis=-1, keepdims=True)
    valid = norm > eps
    return np.where(valid, normals / np.where(valid, norm, 1.0), 0.0).astype(
        np.float32
    )


NORMALS_GT = ('stored', 'unit')


def check_normals_gt(normals_gt: str, owner: str = '') -> str:
    """``normals_gt`` if it is one of :data:`NORMALS_GT`, else a ValueError naming ``owner``
    (the dataset class, for a config's argument) and what each choice does."""
    if normals_gt not in NORMALS_GT:
        prefix = f'{owner}: ' if owner else ''
        raise ValueError(
            f'{prefix}normals_gt={normals_gt!r}; expected one of {NORMALS_GT}: '
            "'stored' keeps the file's vectors (the reference), 'unit' rescales "
            'them to unit length.'
        )
    return normals_gt


def normals_as(
    normals: np.ndarray, normals_gt: str, invalid_zero_sum: bool = False
) -> np.ndarray:
    """Decoded normals as the training uses them.

    ``normals_gt='unit'``: rescaled to unit length (:func:`unit_normals`). ``'stored'``: the
    values as stored (the CTAL reference; 8-bit PNG normals are within about 1% of unit
    length), with ``invalid_zero_sum`` also zeroing the vectors whose components sum to 0 (the
    CNN reference's validity test is ``sum != 0``; ctal_mm's is "not all zero").
    """
    if check_normals_gt(normals_gt) == 'unit':
        return unit_normals(normals)
    normals = normals.astype(np.float32)
    if invalid_zero_sum:
        normals = np.where(normals.sum(-1, keepdims=True) == 0, 0.0, normals)
    return normals.astype(np.float32)


@register_gt_decoder('npy_normals')
def decode_npy_normals(
    path: str, shape: Tuple[int, int], normals_gt: str = 'unit'
) -> np.ndarray:
    """An MTAN normal .npy (H x W x 3 in [-1, 1], all-zero = invalid) as float32 vectors:
    unit length, or as stored (``normals_gt='stored'``, where a vector whose components sum
    to 0 counts as invalid, as in the CNN reference)."""
    what = (
        f'a {shape[0]} x {shape[1]} x 3 normal map in [-1, 1], all-zero = '
        'invalid'
    )
    normals = read_npy(path, what)
    check_shape(normals, path, what, (*shape, 3))
    normals = normals.astype(np.float32)
    if not np.isfinite(normals).all():
        raise DataFileError(
            f'{path}: contains NaN or infinite values; expected {what}.'
        )
    if np.abs(normals).max(initial=0) > 1.0 + 1e-3:
        raise DataFileError(
            f'{path}: values reach {np.abs(normals).max():.4g}; expected {what} '
            '(a normal image encoded as 0..255 must be decoded to [-1, 1] first).'
        )
    return normals_as(normals, normals_gt, invalid_zero_sum=True)


@register_gt_decoder('png_label')
def decode_png_label(
    path: str,
    shape: Tuple[int, int],
    num_classes: int,
    ignore_values: Sequence[int] = (IGNORE_INDEX,),
) -> np.ndarray:
    """A single-channel (or palette) PNG of class ids, 255 = ignore, as uint8."""
    what = (
        f'a {shape[0]} x {shape[1]} single-channel PNG of class ids '
        f'0..{num_classes - 1}, 255 = ignore'
    )
    labels = read_pil(path, what)
    check_shape(labels, path, what, shape)
    return labels_to_uint8(labels, path, num_classes, ignore_values)


@register_gt_decoder('png_saliency')
def decode_png_saliency(
    path: str, shape: Tuple[int, int], threshold: float = 0.5
) -> np.ndarray:
    """A grey-level saliency PNG as uint8 {0, 1}: value / 255 > ``threshold`` is foreground."""
    what = f'a {shape[0]} x {shape[1]} grey-level saliency PNG'
    grey = read_pil(path, what, mode='L')
    check_shape(grey, path, what, shape)
    return (grey.astype(np.float32) / 255.0 > threshold).astype(np.uint8)


def check_gt(
    gt: np.ndarray, task: str, kind_name: str, path: str, shape
) -> None:
    """Raise :class:`DataFileError` unless ``gt`` follows the pipeline convention of its kind."""
    kind = task_kind(kind_name)
    want_shape = tuple(shape) + ((kind.channels,) if kind.channels > 1 else ())
    want_dtype = np.uint8 if kind.is_label else np.float32
    if tuple(gt.shape) != want_shape or gt.dtype != want_dtype:
        raise DataFileError(
            f'{path}: decoded {task!r} ({kind.name}) is {gt.dtype} of shape '
            f'{tuple(gt.shape)}; expected {np.dtype(want_dtype)} of shape '
            f'{want_shape}. The decoder of this task is at fault.'
        )


@TRANSFORMS.register_module()
class LoadMultiTaskImage(BaseTransform):
    """Read ``results['img_path']``: an MTAN .npy image or any image file PIL reads.

    Required keys: ``img_path``. Added keys: ``img`` (H x W x 3 RGB), ``img_shape``,
    ``ori_shape``.

    Args:
        npy_scale: .npy images hold floats in [0, 1] (MTAN); they are multiplied by this
            (255 by default, so every image is on the 0..255 scale) and must not exceed
            ``255 / npy_scale``. Image files are read as uint8 RGB.
        to_float32: convert uint8 images to float32.
    """

    def __init__(self, npy_scale: float = 255.0, to_float32: bool = False):
        self.npy_scale = float(npy_scale)
        self.to_float32 = to_float32

    def transform(self, results: dict) -> dict:
        path = results['img_path']
        if str(path).endswith('.npy'):
            top = 255.0 / self.npy_scale
            what = f'an H x W x 3 RGB image with values in [0, {top:g}]'
            img = check_shape(
                read_npy(path, what), path, what, (None, None, 3)
            )
            img = img.astype(np.float32)
            if not np.isfinite(img).all():
                raise DataFileError(
                    f'{path}: contains NaN or infinite values; expected {what}.'
                )
            if img.size == 0:
                raise DataFileError(f'{path}: is empty; expected {what}.')
            low, high = float(img.min()), float(img.max())
            if low < -1e-3 or high > top * (1 + 1e-3):
                raise DataFileError(
                    f'{path}: values span [{low:.4g}, {high:.4g}]; expected '
                    f'{what}. For images stored on another scale set '
                    'LoadMultiTaskImage(npy_scale=...).'
                )
            img = img * np.float32(self.npy_scale)
        else:
            what = 'an RGB image'
            img = read_pil(path, what, mode='RGB')
            if self.to_float32:
                img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(npy_scale={self.npy_scale}, '
            f'to_float32={self.to_float32})'
        )


@TRANSFORMS.register_module()
class LoadMultiTaskAnnotations(BaseTransform):
    """Decode every task map listed in ``results['ann_info']`` into ``results['gt_<task>']``.

    Required keys: ``ann_info`` (task -> ``dict(decoder=..., path=..., **options)``),
    ``task_kinds``, ``ori_shape`` (set by :class:`LoadMultiTaskImage`). Added keys:
    ``gt_<task>`` per task; ``task_kinds`` is narrowed to the tasks loaded.

    Args:
        tasks: load only these tasks (default: all the dataset lists).
    """

    def __init__(self, tasks: Optional[Sequence[str]] = None):
        self.tasks = None if tasks is None else tuple(tasks)

    def transform(self, results: dict) -> dict:
        ann_info = results.get('ann_info', {})
        kinds = dict(results.get('task_kinds', {}))
        if self.tasks is not None:
            missing = [t for t in self.tasks if t not in ann_info]
            if missing:
                raise KeyError(
                    f'LoadMultiTaskAnnotations(tasks={list(self.tasks)}): the '
                    f'dataset lists no {missing} for {results.get("img_path")}; '
                    f"it has {sorted(ann_info)}. Set the dataset's `tasks`."
                )
        shape = tuple(results['ori_shape'][:2])
        loaded = {}
        for task, entry in ann_info.items():
            if self.tasks is not None and task not in self.tasks:
                continue
            options = dict(entry)
            name = options.pop('decoder')
            if name not in GT_DECODERS:
                raise KeyError(
                    f'Unknown ground-truth decoder {name!r} for task {task!r}; '
                    f'registered: {sorted(GT_DECODERS)}.'
                )
            gt = GT_DECODERS[name](shape=shape, **options)
            kind_name = get_task_kind(task, kinds).name
            check_gt(gt, task, kind_name, options.get('path'), shape)
            results[f'gt_{task}'] = gt
            loaded[task] = kind_name
        results['task_kinds'] = loaded
        # Loaded after a resize of the image (MMSegmentation's test pipelines
        # do this): the maps stay at the original size, where the resized
        # predictions are scored. PackMultiTaskInputs accepts them then.
        img_shape = tuple(results.get('img_shape', shape))[:2]
        results['gt_at_ori_shape'] = img_shape != shape
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(tasks={self.tasks})'


@TRANSFORMS.register_module()
class LoadSyntheticScene(BaseTransform):
    """Render the procedural scene a :class:`SyntheticScenesDataset` sample describes.

    Required keys: ``scene`` (``dict(seed, index, height, width, num_classes)``) and
    ``task_kinds``. Added keys: ``img`` (uint8 RGB), ``img_shape``, ``ori_shape`` and
    ``gt_<task>`` for every task of ``task_kinds``.
    """

    def transform(self, results: dict) -> dict:
        from ..synthetic import render_scene

        scene = render_scene(**results['scene'])
        results['img'] = scene['img']
        results['img_shape'] = scene['img'].shape[:2]
        results['ori_shape'] = scene['img'].shape[:2]
        for task in results['task_kinds']:
            results[f'gt_{task}'] = scene[task]
        return results
