from .base import BaseMultiTaskDecoder, task_channels
from .ctal import CrossTaskAffinityModule, CTALDecoder

__all__ = [
    'BaseMultiTaskDecoder',
    'task_channels',
    'CrossTaskAffinityModule',
    'CTALDecoder',
]
