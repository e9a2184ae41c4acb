from .task_losses import (
    BalancedBCEEdgeLoss,
    BalancedSaliencyLoss,
    MaskedL1DepthLoss,
    MTCrossEntropyLoss,
    NormalsLoss,
)
from .weighting import (
    DWAWeighting,
    FixedWeighting,
    UncertaintyWeighting,
    UnitWeighting,
)

__all__ = [
    'MTCrossEntropyLoss',
    'MaskedL1DepthLoss',
    'NormalsLoss',
    'BalancedBCEEdgeLoss',
    'BalancedSaliencyLoss',
    'FixedWeighting',
    'UncertaintyWeighting',
    'DWAWeighting',
    'UnitWeighting',
]
