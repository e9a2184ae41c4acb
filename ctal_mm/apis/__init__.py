"""Using a trained model: MMSegmentation's ``init_model`` / ``inference_model`` and an
inferencer for files, folders, arrays and videos (docs/inference.md)."""

from .inference import dataset_meta_of, init_model, model_input_size
from .multitask_inferencer import MultiTaskInferencer, inference_model
from .prediction_files import (
    PredictionFilesHook,
    read_prediction_file,
    sample_stem,
    task_palette,
    write_prediction_files,
)
from .transforms import (
    LoadInferenceImage,
    ResizeToInputSize,
    UnreadableImageError,
    inference_pipeline,
)

__all__ = [
    'init_model',
    'inference_model',
    'MultiTaskInferencer',
    'model_input_size',
    'dataset_meta_of',
    'write_prediction_files',
    'read_prediction_file',
    'task_palette',
    'PredictionFilesHook',
    'sample_stem',
    'LoadInferenceImage',
    'ResizeToInputSize',
    'UnreadableImageError',
    'inference_pipeline',
]
