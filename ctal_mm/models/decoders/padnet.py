"""PAD-Net: multi-modal distillation of initial task predictions.

PAD-Net (Xu et al., CVPR 2018, arXiv 1805.04409) as the CTAL reference
trains it: per task an initial head (two bottleneck blocks to 256 channels
and a 1x1 conv) on the shared features, whose prediction is supervised;
then every task receives, as a residual, spatially gated 3x3 projections of
every other task's 256-channel features; a final head per task predicts
from the distilled features. Supervised stages: ``initial`` and ``final``.
"""

from typing import Dict, Mapping, Optional, Sequence

from mmengine.model import BaseModule
from torch import Tensor, nn

from ctal_mm.registry import MODELS

from .base import TwoStageDecoder


class SpatialAttentionGate(BaseModule):
    """Spatially gated 3x3 projection: ``conv(x) * sigmoid(attention(x))``.

    The unit through which PAD-Net and MTI-Net pass one task's features to
    another (the reference's ``SABlock``). Neither convolution has a bias.

    Args:
        channels (int): Input and output channels.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, channels: int, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        self.attention = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.Sigmoid(),
        )
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) * self.attention(x)


class MultiModalDistillation(BaseModule):
    """Every task receives the gated features of every other task.

    ``out[t] = x[t] + sum over s != t of self_attention[t][s](x[s])``.

    Args:
        task_names (Sequence[str]): Task names.
        channels (int): Channels of every task's features.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        task_names: Sequence[str],
        channels: int,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        self.task_names = list(task_names)
        self.self_attention = nn.ModuleDict(
            {
                target: nn.ModuleDict(
                    {
                        source: SpatialAttentionGate(channels)
                        for source in self.task_names
                        if source != target
                    }
                )
                for target in self.task_names
            }
        )

    def forward(self, features: Dict[str, Tensor]) -> Dict[str, Tensor]:
        distilled = {}
        for target in self.task_names:
            refined = features[target]
            for source, gate in self.self_attention[target].items():
                refined = refined + gate(features[source])
            distilled[target] = refined
        return distilled


@MODELS.register_module()
class PADNetDecoder(TwoStageDecoder):
    """PAD-Net decoder on one shared feature map.

    Args:
        tasks (dict): The model's task spec, ``{name: dict(channels=...)}``.
        in_channels (int): Channels of the shared feature map (270 for the
            fused HRNet-W18 map, 768 for Swin-V2-S).
        channels (int): Width of the initial task features and of the
            distillation. Default: 256 (the reference).
        initial_head (dict): Config of the initial head, built per task with
            ``in_channels``, ``channels`` and ``out_channels`` (the task's);
            it must return ``(features, logits)`` when called with
            ``return_features=True``.
        **kwargs: ``final_head``, ``with_cp`` and ``init_cfg`` of
            :class:`~ctal_mm.models.decoders.base.TwoStageDecoder`.
    """

    def __init__(
        self,
        tasks: Mapping[str, Mapping],
        in_channels: int,
        channels: int = 256,
        initial_head: dict = dict(type='BottleneckTaskHead'),
        **kwargs,
    ):
        super().__init__(
            tasks,
            in_channels=in_channels,
            initial_head=dict(initial_head, channels=channels),
            cross_task=dict(channels=channels),
            **kwargs,
        )

    def build_cross_task(self, channels: int) -> int:
        self.distillation = MultiModalDistillation(self.task_names, channels)
        return channels

    def cross_task(self, features: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return self.distillation(features)
