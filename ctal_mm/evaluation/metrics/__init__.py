from .edge_metric import EdgeMetric, edge_thresholds
from .multitask_metric import MultiTaskMetric
from .task_metrics import (
    BaseTaskMetric,
    DepthMetric,
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
    'edge_thresholds',
    'MultiTaskMetric',
]
