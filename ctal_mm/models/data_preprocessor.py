"""The data preprocessor: normalise, pad and stack images; pad the task maps alike in training."""

import logging
import math
from numbers import Number
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseDataPreprocessor

from ctal_mm.registry import MODELS
from ctal_mm.structures import MultiTaskDataSample, get_task_kind
from ctal_mm.utils.misc import PAD_MODES, as_pair, few, padding_for

MIXED_SIZES = ('error', 'warn', 'allow')


@MODELS.register_module()
class MultiTaskDataPreProcessor(BaseDataPreprocessor):
    """Normalise, pad and stack a batch of images; pad every task map with its ignore value.

    Like mmseg's SegDataPreProcessor, for any set of tasks:

    * images become float and, with ``mean`` / ``std``, ``(img - mean) / std`` per channel
      (RGB order, the order of ctal_mm's images). The CNN reference feeds the raw [0, 1]
      images: ``mean=[0, 0, 0], std=[255, 255, 255]`` gives exactly that;
    * the batch is padded to ``size`` (h, w), or up to a multiple of ``size_divisor``, or (neither)
      to the largest image of the batch; an image larger than ``size`` makes the whole batch
      larger, it is never cropped. ``pad_mode`` places the image 'bottom_right' (padding on the
      right and bottom, default) or 'centre';
    * in training each ``gt_<task>`` is padded the same way with its kind's ignore value (255
      for label kinds, 0 for depth and normals);
    * at test time only the images are padded (``test_cfg`` may set other ``size``,
      ``size_divisor`` and ``pad_mode``), and each sample's metainfo gets ``padding_size``
      (left, right, top, bottom), added to any padding the pipeline did, so the model can crop
      its predictions back to ``img_shape`` before resizing them to ``ori_shape``.

    Every sample's metainfo also gets ``batch_input_shape`` and ``pad_shape``.

    Args:
        mean: per-channel mean, or None (no normalisation; then ``std`` must be None too).
        std: per-channel standard deviation.
        size: (h, w) or an int to pad to.
        size_divisor: pad height and width up to multiples of this.
        pad_val: padding value of the images (after normalisation).
        pad_mode: 'bottom_right' or 'centre'.
        test_cfg: ``size`` / ``size_divisor`` / ``pad_mode`` for test-time padding; any key left
            out is taken from the arguments above.
        mixed_sizes: a batch whose images differ in size and are not all padded to ``size``
            gets a shape that depends on the batch, which a model of fixed input size (CTAL)
            cannot take: 'error' (default) raises naming the files and their sizes, 'warn'
            logs that and pads, 'allow' pads silently.
        non_blocking: as mmengine's BaseDataPreprocessor.

    Example:
        >>> pre = MultiTaskDataPreProcessor(mean=[0] * 3, std=[255] * 3, size_divisor=32)
    """

    def __init__(
        self,
        mean: Optional[Sequence[Number]] = None,
        std: Optional[Sequence[Number]] = None,
        size: Optional[Sequence[int]] = None,
        size_divisor: Optional[int] = None,
        pad_val: Number = 0,
        pad_mode: str = 'bottom_right',
        test_cfg: Optional[dict] = None,
        mixed_sizes: str = 'error',
        non_blocking: bool = False,
    ):
        super().__init__(non_blocking=non_blocking)
        if mixed_sizes not in MIXED_SIZES:
            raise ValueError(
                f'mixed_sizes={mixed_sizes!r}; expected one of {MIXED_SIZES}.'
            )
        self.mixed_sizes = mixed_sizes
        if (mean is None) != (std is None):
            raise ValueError(
                f'mean={mean} and std={std}: give both (normalise) or neither.'
            )
        self._normalize = mean is not None
        if self._normalize:
            if len(mean) != len(std):
                raise ValueError(
                    f'mean has {len(mean)} values but std {len(std)}.'
                )
            if any(float(s) == 0 for s in std):
                raise ValueError(f'std={std} contains 0.')
            self.register_buffer(
                'mean',
                torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
                False,
            )
            self.register_buffer(
                'std',
                torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
                False,
            )
        self.train_padding = self._padding_cfg(
            dict(size=size, size_divisor=size_divisor, pad_mode=pad_mode)
        )
        unknown = set(test_cfg or {}) - {'size', 'size_divisor', 'pad_mode'}
        if unknown:
            raise KeyError(
                f'test_cfg has unknown key(s) {sorted(unknown)}; it takes size, '
                'size_divisor and pad_mode.'
            )
        self.test_padding = self._padding_cfg(
            {**dict(size=size, size_divisor=size_divisor, pad_mode=pad_mode),
             **(test_cfg or {})}
        )  # fmt: skip
        self.pad_val = pad_val

    @staticmethod
    def _padding_cfg(cfg: dict) -> dict:
        if cfg['pad_mode'] not in PAD_MODES:
            raise ValueError(
                f'pad_mode={cfg["pad_mode"]!r}; expected one of {PAD_MODES}.'
            )
        if cfg['size'] is not None:
            cfg['size'] = as_pair(cfg['size'], 'size')
        if cfg['size_divisor'] is not None and cfg['size_divisor'] < 1:
            raise ValueError(
                f'size_divisor={cfg["size_divisor"]}; expected >= 1.'
            )
        return cfg

    @staticmethod
    def target_shape(
        shapes: List[Tuple[int, int]], padding: dict
    ) -> Tuple[int, int]:
        """The (h, w) a batch of images of ``shapes`` is padded to."""
        height = max(h for h, _ in shapes)
        width = max(w for _, w in shapes)
        if padding['size'] is not None:
            height = max(height, padding['size'][0])
            width = max(width, padding['size'][1])
        divisor = padding['size_divisor']
        if divisor:
            height = math.ceil(height / divisor) * divisor
            width = math.ceil(width / divisor) * divisor
        return height, width

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Normalise, pad and stack ``data['inputs']``; pad the task maps in training.

        Args:
            data: ``dict(inputs=list of C x H x W tensors, data_samples=list of
                MultiTaskDataSample)`` as collated by the dataloader.
            training: pad the ground truth too.

        Returns:
            ``dict(inputs=B x C x H x W float tensor, data_samples=...)``.
        """
        data = self.cast_data(data)
        inputs = data['inputs']
        samples: Optional[List[MultiTaskDataSample]] = data.get('data_samples')
        if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            inputs = list(inputs)
        inputs = [img.float() for img in inputs]
        if self._normalize:
            if inputs[0].shape[0] != self.mean.shape[0]:
                raise ValueError(
                    f'The images have {inputs[0].shape[0]} channels but mean/std '
                    f'{self.mean.shape[0]} values.'
                )
            inputs = [(img - self.mean) / self.std for img in inputs]
        if training and samples is None:
            raise ValueError(
                'Training needs data_samples with the ground truth.'
            )

        padding_cfg = self.train_padding if training else self.test_padding
        shapes = [tuple(img.shape[-2:]) for img in inputs]
        target = self.target_shape(shapes, padding_cfg)
        if len(set(shapes)) > 1 and target != padding_cfg['size']:
            self._mixed_sizes(shapes, samples, target)
        padded = []
        for index, (img, shape) in enumerate(zip(inputs, shapes)):
            padding = padding_for(shape, target, padding_cfg['pad_mode'])
            padded.append(F.pad(img, padding, value=self.pad_val))
            if samples is None:
                continue
            sample = samples[index]
            if training:
                self._pad_ground_truth(sample, shape, padding)
            old = sample.metainfo.get('padding_size', (0, 0, 0, 0))
            sample.set_metainfo(
                dict(
                    batch_input_shape=target,
                    pad_shape=target,
                    padding_size=tuple(a + b for a, b in zip(old, padding)),
                )
            )
        return dict(inputs=torch.stack(padded, dim=0), data_samples=samples)

    def _mixed_sizes(self, shapes, samples, target) -> None:
        if self.mixed_sizes == 'allow':
            return
        files: Dict[Tuple[int, int], List[str]] = {}
        for index, shape in enumerate(shapes):
            meta = samples[index].metainfo if samples is not None else {}
            name = meta.get('img_path', f'sample {index} of the batch')
            files.setdefault(shape, []).append(str(name))
        listing = '; '.join(
            f'{h}x{w}: {few(names, 3)}'
            for (h, w), names in sorted(
                files.items(), key=lambda item: -len(item[1])
            )
        )
        message = (
            f'A batch mixes image sizes ({listing}); padded it would be '
            f'{target[0]}x{target[1]}, a size that depends on the batch. A file of '
            'another size than the rest of the dataset is often broken; if sizes do '
            'vary, make them equal in the pipeline (a Resize, or a RandomCrop and '
            'MultiTaskPad to one size) or pad to a fixed data_preprocessor size=(h, w); '
            "data_preprocessor mixed_sizes='allow' accepts such batches."
        )
        if self.mixed_sizes == 'error':
            raise ValueError(message)
        print_log(message, logger='current', level=logging.WARNING)

    @staticmethod
    def _pad_ground_truth(
        sample: MultiTaskDataSample,
        shape: Tuple[int, int],
        padding: Tuple[int, int, int, int],
    ) -> None:
        kinds = sample.metainfo.get('task_kinds') or {}
        for task in sample.gt_tasks:
            gt = sample.gt(task)
            if tuple(gt.shape[-2:]) != tuple(shape):
                raise ValueError(
                    f'{sample.metainfo.get("img_path")}: gt_{task} is '
                    f'{tuple(gt.shape[-2:])} but the image is {tuple(shape)}; '
                    'every task map must follow the image through the '
                    'training pipeline (loading annotations after a resize '
                    'is for test pipelines only).'
                )
            kind = get_task_kind(task, kinds)
            sample.set_gt(task, F.pad(gt, padding, value=kind.ignore_value))
