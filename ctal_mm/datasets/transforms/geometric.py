"""Geometric transforms that move the image and every task map together.

Which maps exist and how each one is resized, flipped and padded comes from
``results['task_kinds']`` and the :class:`~ctal_mm.structures.TaskKind` of each map, never from
task or kind names:

* label kinds (``is_label``: segmentation, edge, saliency): nearest-neighbour resizing;
* other kinds: nearest-neighbour resizing (so invalid zeros never blend into valid values);
  distances (``is_distance``: depth) optionally divided by the scale factor (``depth_mode``);
* unit-vector kinds (``is_unit_vector``: normals): ``normals_interpolation='bilinear'``:
  bilinear resizing then renormalisation, with the invalid (all-zero) region resized by nearest
  neighbour; ``'nearest'``: nearest-neighbour resizing, every vector kept as it is (the PASCAL
  reference, which resizes every map by nearest neighbour);
* a horizontal flip negates channel 0 of kinds with ``flip_negates_x`` (normals);
* padding with the kind's ``ignore_value`` (255 for labels, 0 for depth and normals).

Nearest-neighbour resizing uses OpenCV's ``INTER_NEAREST_EXACT`` (pixel-centre sampling, like the
bilinear resizing of the image) rather than mmcv's ``'nearest'`` (``INTER_NEAREST``, which samples
half a pixel off), so a resized label map stays aligned with the resized image.
"""

import math
from typing import Iterator, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from ctal_mm.registry import TRANSFORMS
from ctal_mm.structures import TaskKind, get_task_kind
from ctal_mm.utils.misc import as_pair, padding_for

DEPTH_MODES = ('divide', 'keep')
NORMALS_INTERPOLATIONS = ('bilinear', 'nearest')


def task_maps(results: dict) -> Iterator[Tuple[str, TaskKind]]:
    """``(results key, kind)`` of every ``gt_<task>`` map present for ``results['task_kinds']``."""
    kinds = results.get('task_kinds', {})
    for task in kinds:
        key = f'gt_{task}'
        if key in results:
            yield key, get_task_kind(task, kinds)


def resize_nearest(array: np.ndarray, size_wh: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize with pixel-centre sampling (see the module docstring)."""
    return cv2.resize(array, size_wh, interpolation=cv2.INTER_NEAREST_EXACT)


def resize_unit_vectors(
    vectors: np.ndarray, size_wh: Tuple[int, int]
) -> np.ndarray:
    """Resize an H x W x 3 unit-vector map: bilinear values, nearest validity, renormalised."""
    valid = (np.abs(vectors).sum(axis=-1) > 0).astype(np.uint8)
    resized = cv2.resize(vectors, size_wh, interpolation=cv2.INTER_LINEAR)
    valid = resize_nearest(valid, size_wh).astype(bool)
    norm = np.linalg.norm(resized, axis=-1)
    # A valid pixel whose neighbours point in opposite directions can average to ~0: drop it.
    valid &= norm > 1e-6
    out = np.zeros_like(resized)
    out[valid] = resized[valid] / norm[valid, None]
    return out


def resize_task_map(
    array: np.ndarray,
    kind: TaskKind,
    size_wh: Tuple[int, int],
    depth_scale: float,
    depth_mode: str,
    normals_interpolation: str = 'bilinear',
) -> np.ndarray:
    """Resize one task map to ``size_wh`` = (w, h) according to its kind.

    ``depth_scale`` is the image's scale factor; with ``depth_mode='divide'`` distances (depth)
    are divided by it (MTAN's convention: an image enlarged s times looks like a camera s times
    closer).
    """
    if kind.is_label:
        return resize_nearest(array, size_wh)
    if kind.is_unit_vector:
        if normals_interpolation == 'nearest':
            return resize_nearest(array, size_wh)
        return resize_unit_vectors(array, size_wh)
    resized = resize_nearest(array, size_wh)
    if kind.is_distance and depth_mode == 'divide':
        resized = resized / np.float32(depth_scale)
    return resized.astype(array.dtype)


def _exactly_one(owner: str, **options) -> None:
    """Refuse all or none of ``options`` set (not None)."""
    if sum(value is not None for value in options.values()) != 1:
        given = ', '.join(f'{key}={value}' for key, value in options.items())
        raise ValueError(
            f'{owner} needs exactly one of {" and ".join(options)}; got {given}.'
        )


def _check_choice(name: str, value: str, choices, meaning: str) -> str:
    if value not in choices:
        raise ValueError(
            f'{name}={value!r}; expected one of {choices}: {meaning}.'
        )
    return value


def _check_depth_mode(depth_mode: str) -> str:
    return _check_choice(
        'depth_mode',
        depth_mode,
        DEPTH_MODES,
        "'divide' divides depth by the scale factor (MTAN), 'keep' leaves "
        'it unchanged',
    )


def _check_normals_interpolation(normals_interpolation: str) -> str:
    return _check_choice(
        'normals_interpolation',
        normals_interpolation,
        NORMALS_INTERPOLATIONS,
        "'bilinear' blends and renormalises the vectors, 'nearest' copies "
        'them (the PASCAL reference)',
    )


def apply_resize(
    results: dict,
    size_wh: Tuple[int, int],
    depth_mode: str,
    interpolation: str = 'bilinear',
    normals_interpolation: str = 'bilinear',
) -> dict:
    """Resize ``results['img']`` and every task map to ``size_wh``; update shapes and scale."""
    img = results['img']
    h, w = img.shape[:2]
    new_w, new_h = size_wh
    w_scale, h_scale = new_w / w, new_h / h
    results['img'] = mmcv.imresize(img, size_wh, interpolation=interpolation)
    depth_scale = math.sqrt(w_scale * h_scale)
    for key, kind in task_maps(results):
        results[key] = resize_task_map(
            results[key],
            kind,
            size_wh,
            depth_scale,
            depth_mode,
            normals_interpolation,
        )
    old_w, old_h = results.get('scale_factor', (1.0, 1.0))
    results['img_shape'] = (new_h, new_w)
    results['scale_factor'] = (old_w * w_scale, old_h * h_scale)
    return results


@TRANSFORMS.register_module()
class MultiTaskResize(BaseTransform):
    """Resize the image and every task map (e.g. a test-time resize).

    Args:
        scale: target (w, h); with ``keep_ratio`` the image is scaled as large as fits inside it
            (mmcv's ``rescale_size``). Exactly one of ``scale`` and ``scale_factor`` is given.
        scale_factor: a factor of the image's own size.
        keep_ratio: keep the aspect ratio (only used with ``scale``).
        depth_mode: 'divide' (depth / scale factor, MTAN) or 'keep'. A test-time resize of an
            image whose depth is evaluated at the original size should use 'keep'.
        interpolation: mmcv interpolation of the image.
        normals_interpolation: of the normals: 'bilinear' (blended, renormalised to unit length)
            or 'nearest' (copied as they are, as the PASCAL reference).
    """

    def __init__(
        self,
        scale: Optional[Sequence[int]] = None,
        scale_factor: Optional[float] = None,
        keep_ratio: bool = True,
        depth_mode: str = 'divide',
        interpolation: str = 'bilinear',
        normals_interpolation: str = 'bilinear',
    ):
        _exactly_one('MultiTaskResize', scale=scale, scale_factor=scale_factor)
        self.scale = None if scale is None else as_pair(scale, 'scale')
        self.scale_factor = scale_factor
        self.keep_ratio = keep_ratio
        self.depth_mode = _check_depth_mode(depth_mode)
        self.interpolation = interpolation
        self.normals_interpolation = _check_normals_interpolation(
            normals_interpolation
        )

    def target_size(self, img_shape: Tuple[int, int]) -> Tuple[int, int]:
        """The (w, h) the image of ``img_shape`` (h, w) is resized to."""
        h, w = img_shape
        if self.scale is None:
            factor = float(self.scale_factor)
            return max(1, round(w * factor)), max(1, round(h * factor))
        if self.keep_ratio:
            return mmcv.rescale_size((w, h), self.scale)
        return self.scale

    def transform(self, results: dict) -> dict:
        size = self.target_size(results['img'].shape[:2])
        return apply_resize(
            results,
            size,
            self.depth_mode,
            self.interpolation,
            self.normals_interpolation,
        )

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(scale={self.scale}, scale_factor='
            f'{self.scale_factor}, keep_ratio={self.keep_ratio}, '
            f'depth_mode={self.depth_mode!r}, normals_interpolation='
            f'{self.normals_interpolation!r})'
        )


@TRANSFORMS.register_module()
class MultiTaskRandomResize(BaseTransform):
    """Resize by a random ratio drawn uniformly from ``ratio_range``, all task maps alike.

    Args:
        ratio_range: (low, high) of the ratio.
        scale: base (w, h) the ratio multiplies (as mmseg's RandomResize); None (default) uses
            the image's own size, as the PASCAL reference's random scaling does.
        keep_ratio: keep the aspect ratio when ``scale`` is given.
        depth_mode: 'divide' (depth / scale factor, MTAN) or 'keep'.
        interpolation: mmcv interpolation of the image.
        normals_interpolation: of the normals: 'bilinear' (blended, renormalised to unit length)
            or 'nearest' (copied as they are, as the PASCAL reference).
    """

    def __init__(
        self,
        ratio_range: Sequence[float] = (0.5, 2.0),
        scale: Optional[Sequence[int]] = None,
        keep_ratio: bool = True,
        depth_mode: str = 'divide',
        interpolation: str = 'bilinear',
        normals_interpolation: str = 'bilinear',
    ):
        low, high = ratio_range
        if not 0 < low <= high:
            raise ValueError(
                f'ratio_range={ratio_range}; expected 0 < low <= high.'
            )
        self.ratio_range = (float(low), float(high))
        self.scale = None if scale is None else as_pair(scale, 'scale')
        self.keep_ratio = keep_ratio
        self.depth_mode = _check_depth_mode(depth_mode)
        self.interpolation = interpolation
        self.normals_interpolation = _check_normals_interpolation(
            normals_interpolation
        )

    def transform(self, results: dict) -> dict:
        ratio = np.random.uniform(*self.ratio_range)
        if self.scale is None:
            resize = MultiTaskResize(
                scale_factor=ratio,
                depth_mode=self.depth_mode,
                interpolation=self.interpolation,
                normals_interpolation=self.normals_interpolation,
            )
        else:
            resize = MultiTaskResize(
                scale=(
                    round(self.scale[0] * ratio),
                    round(self.scale[1] * ratio),
                ),
                keep_ratio=self.keep_ratio,
                depth_mode=self.depth_mode,
                interpolation=self.interpolation,
                normals_interpolation=self.normals_interpolation,
            )
        return resize.transform(results)

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(ratio_range={self.ratio_range}, '
            f'scale={self.scale}, keep_ratio={self.keep_ratio}, '
            f'depth_mode={self.depth_mode!r}, normals_interpolation='
            f'{self.normals_interpolation!r})'
        )


@TRANSFORMS.register_module()
class MultiTaskRandomFlip(BaseTransform):
    """Flip the image and every task map horizontally with probability ``prob``.

    Kinds whose ``flip_negates_x`` is set (normals) also have their x channel negated, so the
    vectors still describe the flipped scene. Sets ``flip`` and ``flip_direction``.

    Args:
        prob: probability of flipping.
    """

    def __init__(self, prob: float = 0.5):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob={prob}; expected a probability in [0, 1].')
        self.prob = prob

    @staticmethod
    def flip(results: dict) -> dict:
        """Flip ``results`` horizontally (deterministically)."""
        results['img'] = np.ascontiguousarray(results['img'][:, ::-1])
        for key, kind in task_maps(results):
            flipped = np.ascontiguousarray(results[key][:, ::-1])
            if kind.flip_negates_x:
                flipped[..., 0] *= -1
                # -0.0 stays a valid "all-zero = invalid" marker, but keep it a clean 0
                flipped += 0.0
            results[key] = flipped
        return results

    def transform(self, results: dict) -> dict:
        do_flip = bool(np.random.rand() < self.prob)
        already = bool(results.get('flip', False))
        if do_flip:
            self.flip(results)
        # two flips cancel: record the net state, as mmcv does
        results['flip'] = already != do_flip
        results['flip_direction'] = 'horizontal' if results['flip'] else None
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'


def segmentation_task(results: dict, task: Optional[str]) -> Optional[str]:
    """The ``gt_<task>`` key used for ``cat_max_ratio``: ``task``, or the first map of a kind
    with classes (segmentation)."""
    kinds = results.get('task_kinds', {})
    if task is not None:
        if f'gt_{task}' not in results:
            raise KeyError(
                f'cat_max_task={task!r} is not loaded for '
                f'{results.get("img_path")} (tasks: {sorted(kinds)}); name a '
                'loaded segmentation task or leave it None.'
            )
        return f'gt_{task}'
    for key, kind in task_maps(results):
        if kind.has_classes:
            return key
    return None


@TRANSFORMS.register_module()
class MultiTaskRandomCrop(BaseTransform):
    """Crop the image and every task map at one random window.

    As mmseg's RandomCrop: an image smaller than ``crop_size`` is cropped to its own size along
    that axis (pad afterwards), and with ``cat_max_ratio < 1`` up to 10 windows are drawn until
    no single class covers more than that share of the window's labelled pixels on the
    segmentation map (``cat_max_task``, or the first task of kind segmentation).

    Args:
        crop_size: (h, w) or an int.
        cat_max_ratio: the largest share one class may take in the window.
        cat_max_task: the task whose labels ``cat_max_ratio`` looks at.
    """

    def __init__(
        self,
        crop_size: Union[int, Sequence[int]],
        cat_max_ratio: float = 1.0,
        cat_max_task: Optional[str] = None,
    ):
        self.crop_size = as_pair(crop_size, 'crop_size')
        if min(self.crop_size) <= 0:
            raise ValueError(
                f'crop_size={crop_size}; expected positive sizes.'
            )
        self.cat_max_ratio = cat_max_ratio
        self.cat_max_task = cat_max_task

    def random_window(self, img_shape) -> Tuple[int, int, int, int]:
        h, w = img_shape[:2]
        margin_h = max(h - self.crop_size[0], 0)
        margin_w = max(w - self.crop_size[1], 0)
        top = np.random.randint(0, margin_h + 1)
        left = np.random.randint(0, margin_w + 1)
        return (
            top,
            top + min(self.crop_size[0], h),
            left,
            left + min(self.crop_size[1], w),
        )

    def choose_window(self, results: dict) -> Tuple[int, int, int, int]:
        window = self.random_window(results['img'].shape)
        key = None
        if self.cat_max_ratio < 1.0:
            key = segmentation_task(results, self.cat_max_task)
        if key is None:
            return window
        ignore = get_task_kind(key[3:], results['task_kinds']).ignore_value
        for _ in range(10):
            top, bottom, left, right = window
            labels = results[key][top:bottom, left:right]
            classes, counts = np.unique(labels, return_counts=True)
            counts = counts[classes != ignore]
            if (
                len(counts) > 1
                and counts.max() / counts.sum() < self.cat_max_ratio
            ):
                break
            window = self.random_window(results['img'].shape)
        return window

    @staticmethod
    def crop(results: dict, window: Tuple[int, int, int, int]) -> dict:
        """Crop ``results`` to ``window`` = (top, bottom, left, right)."""
        top, bottom, left, right = window
        results['img'] = results['img'][top:bottom, left:right].copy()
        for key, _ in task_maps(results):
            results[key] = results[key][top:bottom, left:right].copy()
        results['img_shape'] = results['img'].shape[:2]
        return results

    def transform(self, results: dict) -> dict:
        return self.crop(results, self.choose_window(results))

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(crop_size={self.crop_size}, '
            f'cat_max_ratio={self.cat_max_ratio}, '
            f'cat_max_task={self.cat_max_task!r})'
        )


def pad_array(
    array: np.ndarray, padding: Tuple[int, int, int, int], value: float
) -> np.ndarray:
    """``array`` (H x W [x C]) padded by (left, right, top, bottom) with ``value`` everywhere.

    numpy rather than ``mmcv.impad``: with a scalar value, OpenCV pads only the first channel of
    a multi-channel image (the others get 0).
    """
    left, right, top, bottom = padding
    widths = ((top, bottom), (left, right)) + ((0, 0),) * (array.ndim - 2)
    return np.pad(array, widths, mode='constant', constant_values=value)


@TRANSFORMS.register_module()
class MultiTaskPad(BaseTransform):
    """Pad the image and every task map, each task map with its kind's ignore value.

    Images smaller than the target grow to it; larger ones are left as they are. Sets
    ``pad_shape`` and adds this padding to ``padding_size`` (left, right, top, bottom).

    Args:
        size: target (h, w) or an int; or
        size_divisor: pad each side up to a multiple of this.
        pad_val: the image's padding value.
        mode: 'bottom_right' (default) or 'centre'.
    """

    def __init__(
        self,
        size: Optional[Union[int, Sequence[int]]] = None,
        size_divisor: Optional[int] = None,
        pad_val: float = 0,
        mode: str = 'bottom_right',
    ):
        _exactly_one('MultiTaskPad', size=size, size_divisor=size_divisor)
        self.size = None if size is None else as_pair(size, 'size')
        self.size_divisor = size_divisor
        self.pad_val = pad_val
        padding_for((1, 1), (1, 1), mode)
        self.mode = mode

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        if self.size is not None:
            target = self.size
        else:
            d = self.size_divisor
            target = (math.ceil(h / d) * d, math.ceil(w / d) * d)
        left, right, top, bottom = padding_for((h, w), target, self.mode)
        padding = (left, right, top, bottom)
        results['img'] = pad_array(results['img'], padding, self.pad_val)
        for key, kind in task_maps(results):
            results[key] = pad_array(results[key], padding, kind.ignore_value)
        results['pad_shape'] = results['img'].shape[:2]
        old = results.get('padding_size', (0, 0, 0, 0))
        results['padding_size'] = tuple(
            a + b for a, b in zip(old, (left, right, top, bottom))
        )
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(size={self.size}, size_divisor='
            f'{self.size_divisor}, pad_val={self.pad_val}, mode={self.mode!r})'
        )
