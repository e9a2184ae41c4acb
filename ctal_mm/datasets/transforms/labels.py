"""Transforms on the label maps alone."""

from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from ctal_mm.registry import TRANSFORMS
from ctal_mm.structures import IGNORE_INDEX, get_task_kind

EMPTY_LABEL_MODES = ('after_crop', 'full_image')


@TRANSFORMS.register_module()
class MultiTaskIgnoreEmptyLabels(BaseTransform):
    """Make a label map all-ignore (255) when it holds no foreground pixel.

    The PASCAL-Context reference checks every training human-parts map after its random
    scale, crop, flip and pad, and ignores a map with only background (0) and ignore (255)
    left whole, so a crop that misses every person adds nothing to the parts loss. Placed
    after the crop, this transform does the same.

    Required keys: ``gt_<task>`` (uint8, 255 = ignore) of each task present. Modified keys:
    those maps. Tasks absent from ``results`` are skipped (the dataset may not load them).

    Args:
        tasks: the label tasks checked.
        background: the class that is not foreground.
        mode: ``'after_crop'``: decide on the map as it arrives here (the reference);
            ``'full_image'``: leave the map as it is, so only the decision made on the whole
            image holds (the PASCAL decoder makes an image without a part pixel all-ignore):
            crops without a person then train as background.
    """

    def __init__(
        self,
        tasks: Sequence[str] = ('human_parts',),
        background: int = 0,
        mode: str = 'after_crop',
    ):
        if mode not in EMPTY_LABEL_MODES:
            raise ValueError(
                f'MultiTaskIgnoreEmptyLabels: mode={mode!r}; expected one of '
                f"{EMPTY_LABEL_MODES}: 'after_crop' ignores a map with no "
                "foreground pixel where the transform stands, 'full_image' "
                'keeps the decision made on the whole image.'
            )
        self.tasks = tuple(tasks)
        self.background = int(background)
        self.mode = mode

    def transform(self, results: dict) -> dict:
        if self.mode == 'full_image':
            return results
        kinds = results.get('task_kinds', {})
        for task in self.tasks:
            key = f'gt_{task}'
            if key not in results:
                continue
            if not get_task_kind(task, kinds).is_label:
                raise ValueError(
                    f'MultiTaskIgnoreEmptyLabels: {task!r} is a '
                    f'{get_task_kind(task, kinds).name} map, not a label map.'
                )
            labels = results[key]
            foreground = (labels != self.background) & (labels != IGNORE_INDEX)
            if not foreground.any():
                results[key] = np.full_like(labels, IGNORE_INDEX)
        return results

    def __repr__(self) -> str:
        return (
            f'{self.__class__.__name__}(tasks={self.tasks}, '
            f'background={self.background}, mode={self.mode!r})'
        )
