"""The data sample that carries one image's ground truth and predictions for every task."""

from typing import List

import torch
from mmengine.structures import BaseDataElement, PixelData


class MultiTaskDataSample(BaseDataElement):
    """Ground truth and predictions of any set of dense tasks for one image.

    Data fields are ``gt_<task>`` and ``pred_<task>``, each a :class:`PixelData` whose ``data`` is a
    C x H x W tensor following the conventions of :mod:`ctal_mm.structures.task_kinds`. Meta
    information follows MMSegmentation's names: ``img_path``, ``ori_shape`` (as loaded),
    ``img_shape`` (after resize/crop), ``pad_shape``, ``flip``, ``flip_direction``,
    ``scale_factor``, ``sample_idx``, plus ``task_kinds`` (task -> kind name).

    Example:
        >>> sample = MultiTaskDataSample(metainfo=dict(img_shape=(4, 4)))
        >>> sample.set_gt('depth', torch.ones(1, 4, 4))
        >>> sample.gt_tasks
        ['depth']
    """

    GT_PREFIX = 'gt_'
    PRED_PREFIX = 'pred_'

    def set_gt(self, task: str, data: torch.Tensor) -> None:
        self.set_field(
            PixelData(data=data), self.GT_PREFIX + task, dtype=PixelData
        )

    def set_pred(self, task: str, data: torch.Tensor) -> None:
        self.set_field(
            PixelData(data=data), self.PRED_PREFIX + task, dtype=PixelData
        )

    def gt(self, task: str) -> torch.Tensor:
        """The ground-truth tensor of ``task`` (C x H x W)."""
        return self._field(self.GT_PREFIX, task).data

    def pred(self, task: str) -> torch.Tensor:
        """The prediction tensor of ``task`` (C x H x W)."""
        return self._field(self.PRED_PREFIX, task).data

    def has_gt(self, task: str) -> bool:
        return (self.GT_PREFIX + task) in self

    @property
    def gt_tasks(self) -> List[str]:
        return self._tasks(self.GT_PREFIX)

    @property
    def pred_tasks(self) -> List[str]:
        return self._tasks(self.PRED_PREFIX)

    def _field(self, prefix: str, task: str) -> PixelData:
        name = prefix + task
        if name not in self:
            raise KeyError(
                f'This data sample has no {name!r}; it has {self._tasks(prefix)} '
                f'(fields {sorted(self.keys())}).'
            )
        return getattr(self, name)

    def _tasks(self, prefix: str) -> List[str]:
        return sorted(
            k[len(prefix) :] for k in self.keys() if k.startswith(prefix)
        )
