"""Reading any image a user has, and bringing it to the model's input size.

ctal_mm's images are RGB; mmcv and OpenCV hand out BGR. :class:`LoadInferenceImage` takes a file
path or an array as mmcv reads it (BGR, grayscale, BGRA, 8 or 16 bit) and gives the RGB image
every pipeline expects; :func:`inference_pipeline` adds the resize to the model's size.
"""

import os.path as osp
from typing import List, Optional, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from ctal_mm.registry import TRANSFORMS

from .geometric import MultiTaskPad, apply_resize

RESIZE_MODES = ('resize', 'keep_ratio_pad')


class UnreadableImageError(ValueError):
    """A file that is not an image OpenCV can decode."""


def as_rgb(img: np.ndarray, name: str = 'the array') -> np.ndarray:
    """An array as mmcv reads images (BGR, H x W gray, H x W x 4 BGRA; uint8, uint16 or
    float on the 0..255 scale) -> H x W x 3 RGB, uint8 kept, anything else float32 0..255.

    16-bit images are divided by 257 (65535 -> 255); the alpha channel is dropped.
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(
            f'{name}: expected a numpy image, got {type(img).__name__}.'
        )
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.size == 0:
        raise UnreadableImageError(
            f'{name}: shape {img.shape} is not an image; expected H x W '
            '(gray), H x W x 3 (BGR) or H x W x 4 (BGRA).'
        )
    img = img[..., 2::-1]  # BGR(A) -> RGB
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / np.float32(257.0)
    if img.dtype == np.bool_ or not np.issubdtype(img.dtype, np.number):
        raise UnreadableImageError(
            f'{name}: dtype {img.dtype} is not an image type.'
        )
    img = img.astype(np.float32)
    if not np.isfinite(img).all():
        raise UnreadableImageError(f'{name}: contains NaN or infinities.')
    return img


def read_image(path: str) -> np.ndarray:
    """The image file ``path`` as OpenCV decodes it (BGR, 8 or 16 bit, alpha kept)."""
    if not osp.isfile(path):
        raise UnreadableImageError(f'{path}: no such file.')
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise UnreadableImageError(
            f'{path}: not an image file OpenCV can decode (PNG, JPEG, TIFF, '
            'BMP, WebP...). Remove it or pass image files only.'
        )
    return img


@TRANSFORMS.register_module()
class LoadInferenceImage(BaseTransform):
    """Load ``results['img']`` (a path or a BGR array) as an RGB image.

    Required keys: ``img`` (path or array). Added keys: ``img`` (H x W x 3 RGB), ``img_path``
    (None for arrays), ``ori_shape``, ``img_shape``.
    """

    def transform(self, results: dict) -> dict:
        source = results['img']
        if isinstance(source, str):
            img = as_rgb(read_image(source), source)
            results['img_path'] = source
        else:
            img = as_rgb(source, results.get('img_path') or 'the array')
            results.setdefault('img_path', None)
        results['img'] = img
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class ResizeToInputSize(BaseTransform):
    """Bring the image to the model's input ``size`` (h, w).

    ``mode='resize'`` stretches it to ``size``; ``'keep_ratio_pad'`` scales it by the largest
    factor that fits both sides and pads the rest on the bottom and right (``padding_size``
    records it, so the prediction drops it before going back to the original size).
    """

    def __init__(self, size: Tuple[int, int], mode: str = 'resize'):
        if mode not in RESIZE_MODES:
            raise ValueError(
                f'resize mode {mode!r}; expected one of {RESIZE_MODES}.'
            )
        self.size = (int(size[0]), int(size[1]))
        self.mode = mode

    def transform(self, results: dict) -> dict:
        height, width = self.size
        h, w = results['img'].shape[:2]
        if self.mode == 'resize':
            target = (width, height)
        else:
            factor = min(height / h, width / w)
            target = (
                min(width, max(1, round(w * factor))),
                min(height, max(1, round(h * factor))),
            )
        if target != (w, h):
            apply_resize(results, target, depth_mode='keep')
        if self.mode == 'keep_ratio_pad':
            MultiTaskPad(size=self.size).transform(results)
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(size={self.size}, mode={self.mode!r})'
        )


def inference_pipeline(
    input_size: Optional[Tuple[int, int]],
    resize_mode: str = 'resize',
    size_divisor: int = 32,
) -> List[dict]:
    """The transforms from an image file or array to the model's input.

    Args:
        input_size: (h, w) of the model's input, or None to keep each image's size (padded up
            to a multiple of ``size_divisor``).
        resize_mode: see :class:`ResizeToInputSize`.
    """
    if resize_mode not in RESIZE_MODES:
        raise ValueError(
            f'resize_mode={resize_mode!r}; expected one of {RESIZE_MODES}.'
        )
    if input_size is None:
        size = dict(type='MultiTaskPad', size_divisor=size_divisor)
    else:
        size = dict(
            type='ResizeToInputSize', size=input_size, mode=resize_mode
        )
    return [
        dict(type='LoadInferenceImage'),
        size,
        dict(type='PackMultiTaskInputs'),
    ]
