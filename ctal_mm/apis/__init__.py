"""Using a trained model: MMSegmentation's ``init_model`` / ``inference_model`` and an
inferencer for files, folders, arrays and videos (docs/inference.md)."""

# the transforms and file formats the inferencer uses, for its users
from ctal_mm.datasets.transforms import (
    LoadInferenceImage,
    ResizeToInputSize,
    UnreadableImageError,
    inference_pipeline,
)
from ctal_mm.visualization.prediction_files import (
    read_prediction_file,
    task_palette,
    write_prediction_files,
)

from .inference import dataset_meta_of, init_model, model_input_size
from .multitask_inferencer import MultiTaskInferencer, inference_model

__all__ = [
    'init_model',
    'inference_model',
    'MultiTaskInferencer',
    'model_input_size',
    'dataset_meta_of',
    'write_prediction_files',
    'read_prediction_file',
    'task_palette',
    'LoadInferenceImage',
    'ResizeToInputSize',
    'UnreadableImageError',
    'inference_pipeline',
]
