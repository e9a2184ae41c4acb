from .multitask_metric import MultiTaskMetric
from .task_metrics import (
    BaseTaskMetric,
    DepthMetric,
    EdgeMetric,
    NormalsMetric,
    SaliencyMetric,
    SegmentationMetric,
)

__all__ = [
    'BaseTaskMetric',
    'SegmentationMetric',
    'DepthMetric',
    'NormalsMetric',
    'SaliencyMetric',
    'EdgeMetric',
    'MultiTaskMetric',
]
