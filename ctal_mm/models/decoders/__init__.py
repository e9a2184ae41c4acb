from .base import BaseMultiTaskDecoder, TwoStageDecoder, task_channels
from .ctal import CrossTaskAffinityModule, CTALDecoder
from .hps import HPSDecoder
from .invpt import InvPTDecoder
from .mctal import MultiScaleCTALDecoder
from .mtinet import MTINetDecoder
from .padnet import PADNetDecoder
from .papnet import PAPNetDecoder

__all__ = [
    'BaseMultiTaskDecoder',
    'task_channels',
    'TwoStageDecoder',
    'CrossTaskAffinityModule',
    'CTALDecoder',
    'HPSDecoder',
    'InvPTDecoder',
    'MTINetDecoder',
    'MultiScaleCTALDecoder',
    'PADNetDecoder',
    'PAPNetDecoder',
]
