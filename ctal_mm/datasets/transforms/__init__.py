from .formatting import PackMultiTaskInputs
from .geometric import (
    MultiTaskPad,
    MultiTaskRandomCrop,
    MultiTaskRandomFlip,
    MultiTaskRandomResize,
    MultiTaskResize,
)
from .inference_loading import (
    RESIZE_MODES,
    LoadInferenceImage,
    ResizeToInputSize,
    UnreadableImageError,
    inference_pipeline,
)
from .labels import MultiTaskIgnoreEmptyLabels
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
    'MultiTaskIgnoreEmptyLabels',
    'MultiTaskPhotoMetricDistortion',
    'PackMultiTaskInputs',
    'RESIZE_MODES',
    'LoadInferenceImage',
    'ResizeToInputSize',
    'UnreadableImageError',
    'inference_pipeline',
]
