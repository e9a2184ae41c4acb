from .stage_weighting import StageScaledWeighting
from .task_losses import (
    BalancedBCEEdgeLoss,
    BalancedSaliencyLoss,
    MaskedL1DepthLoss,
    MTCrossEntropyLoss,
    NormalsLoss,
)
from .weighting import (
    DWAWeighting,
    FAMOWeighting,
    FixedWeighting,
    GeometricMeanWeighting,
    GradNormWeighting,
    IMTLLWeighting,
    RandomWeighting,
    ScalarizationWeighting,
    STCHWeighting,
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
    'ScalarizationWeighting',
    'GeometricMeanWeighting',
    'IMTLLWeighting',
    'STCHWeighting',
    'RandomWeighting',
    'FAMOWeighting',
    'GradNormWeighting',
    'UnitWeighting',
    'StageScaledWeighting',
]
