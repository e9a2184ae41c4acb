from .formatting import PackMultiTaskInputs
from .geometric import (
    MultiTaskPad,
    MultiTaskRandomCrop,
    MultiTaskRandomFlip,
    MultiTaskRandomResize,
    MultiTaskResize,
)
from .loading import (
    GT_DECODERS,
    LoadMultiTaskAnnotations,
    LoadMultiTaskImage,
    LoadSyntheticScene,
    register_gt_decoder,
)
from .photometric import MultiTaskPhotoMetricDistortion

__all__ = [
    'GT_DECODERS',
    'register_gt_decoder',
    'LoadMultiTaskImage',
    'LoadMultiTaskAnnotations',
    'LoadSyntheticScene',
    'MultiTaskResize',
    'MultiTaskRandomResize',
    'MultiTaskRandomFlip',
    'MultiTaskRandomCrop',
    'MultiTaskPad',
    'MultiTaskPhotoMetricDistortion',
    'PackMultiTaskInputs',
]
