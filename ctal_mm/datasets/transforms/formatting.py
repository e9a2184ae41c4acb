"""Packing ``results`` into the model's input: an image tensor and a MultiTaskDataSample."""

from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from ctal_mm.registry import TRANSFORMS
from ctal_mm.structures import MultiTaskDataSample, get_task_kind

DEFAULT_META_KEYS = (
    'img_path',
    'ori_shape',
    'img_shape',
    'pad_shape',
    'flip',
    'flip_direction',
    'scale_factor',
    'sample_idx',
    'task_kinds',
    'padding_size',
)


@TRANSFORMS.register_module()
class PackMultiTaskInputs(BaseTransform):
    """Pack the image and the task maps of ``results`` for the model.

    Returns ``dict(inputs, data_samples)``: ``inputs`` is the image as a 3 x H x W tensor (its
    dtype kept: uint8 or float32; the data preprocessor normalises), ``data_samples`` a
    :class:`MultiTaskDataSample` with ``gt_<task>`` per task of ``results['task_kinds']``
    (label kinds int64 1 x H x W, depth float32 1 x H x W, normals float32 3 x H x W) and the
    meta keys. Missing ``pad_shape`` defaults to ``img_shape``, ``flip`` to False,
    ``flip_direction`` to None and ``scale_factor`` to (1.0, 1.0); ``padding_size`` is only
    packed when a transform padded.

    Args:
        meta_keys: keys of ``results`` copied to the sample's metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        height, width = img.shape[:2]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        kinds = dict(results.get('task_kinds', {}))
        sample = MultiTaskDataSample()
        for task in kinds:
            key = f'gt_{task}'
            if key not in results:
                continue
            kind = get_task_kind(task, kinds)
            gt = np.asarray(results[key])
            expected = (height, width)
            if results.get('gt_at_ori_shape'):
                expected = tuple(results['ori_shape'][:2])
            if gt.shape[:2] != expected:
                raise ValueError(
                    f'{results.get("img_path")}: {key} is {gt.shape[:2]} but '
                    f'should be {expected} (the image is {(height, width)}); '
                    'a transform moved one without the other (register it '
                    'as a ctal_mm multitask transform).'
                )
            gt = gt[..., None] if gt.ndim == 2 else gt
            tensor = torch.from_numpy(
                np.ascontiguousarray(gt.transpose(2, 0, 1))
            )
            tensor = tensor.long() if kind.is_label else tensor.float()
            sample.set_gt(task, tensor)
        defaults = dict(
            pad_shape=results.get('img_shape', (height, width)),
            flip=False,
            flip_direction=None,
            scale_factor=(1.0, 1.0),
        )
        meta = {}
        for key in self.meta_keys:
            if key in results:
                meta[key] = results[key]
            elif key in defaults:
                meta[key] = defaults[key]
        meta['task_kinds'] = kinds
        sample.set_metainfo(meta)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
