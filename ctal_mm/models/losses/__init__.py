from .loss_keys import (
    ExtraTerm,
    format_loss_dict,
    format_loss_key,
    parse_loss_key,
)
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
    'ExtraTerm',
    'format_loss_key',
    'format_loss_dict',
    'parse_loss_key',
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
