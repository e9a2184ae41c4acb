"""A loss weighting that scales some decoder stages' losses before another weighting."""

from typing import Dict, Mapping, Optional, Sequence

from torch import Tensor, nn

from ctal_mm.registry import MODELS

from .loss_keys import LossKey, StageTask


@MODELS.register_module()
class StageScaledWeighting(nn.Module):
    """Scale the raw loss of some stages, then weight as ``base`` does.

    MTI-Net and M-CTAL supervise their four scales' initial predictions
    (stages ``scale_0`` .. ``scale_3``) and, as the reference, average
    these four losses: ``stage_weights`` = 1/4 for each.

    Args:
        tasks (Sequence[str]): Task names (passed on to ``base``).
        stage_weights (Mapping[str, float]): Factor per stage name; stages
            not listed keep factor 1.
        base (dict): The weighting strategy applied after scaling, e.g.
            ``dict(type='FixedWeighting')`` or
            ``dict(type='UncertaintyWeighting')``.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        stage_weights: Mapping[str, float],
        base: Optional[dict] = None,
    ):
        super().__init__()
        self.stage_weights = dict(stage_weights)
        base = dict(type='FixedWeighting') if base is None else base
        self.base = MODELS.build(dict(base, tasks=list(tasks)))

    def forward(
        self, losses: Mapping[StageTask, Tensor], weights: Mapping[str, float]
    ) -> Dict[LossKey, Tensor]:
        scaled = {
            (stage, task): self.stage_weights.get(stage, 1.0) * value
            for (stage, task), value in losses.items()
        }
        return self.base(scaled, weights)
