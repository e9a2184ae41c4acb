"""MTI-Net: multi-scale task interaction on HRNet.

MTI-Net (Vandenhende et al., ECCV 2020, arXiv 2001.06902) as the CTAL
reference trains it on HRNet-W18 (maps of 18, 36, 72, 144 channels at
strides 4..32):

1. From the coarsest scale to the finest, per task: two ResNet basic blocks
   refine the backbone map of the scale, concatenated with the task's
   features propagated from the coarser scale (upsampled x2), to the scale's
   width; a 1x1 conv makes the task's initial prediction at that scale
   (supervised: stages ``scale_0`` .. ``scale_3``, finest first).
2. Between scales, a feature propagation module (FPM) mixes the tasks'
   features (a per-channel softmax over tasks, computed by two basic blocks
   and a 1x1 conv), reduces them to the scale's width with a basic block and
   adds a squeeze-and-excitation recalibrated copy to every task.
3. At every scale, PAD-Net-style multi-modal distillation between tasks.
4. Per task, an HRNet head aggregates the task's four distilled maps
   (stage ``final``).

The reference averages the four scales' losses (weight 1/4 each); the
configs set that through the model's per-stage loss weights.
"""

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.utils import SELayer
from mmseg.models.backbones.resnet import BasicBlock
from mmseg.models.utils import ResLayer
from torch import Tensor, nn

from ctal_mm.registry import MODELS

from .base import BaseMultiTaskDecoder
from .padnet import MultiModalDistillation

TaskMaps = Dict[str, Tensor]


class ScaleTaskRefinement(BaseModule):
    """Per-task refinement and initial prediction at one scale.

    Per task: the scale's backbone map, concatenated with the task's
    features propagated from the coarser scale when there are any (resized
    to this scale), goes through two basic blocks to ``channels``, then a
    1x1 conv to the task's output channels.

    Args:
        task_channels (dict[str, int]): Output channels per task.
        in_channels (int): Input channels (backbone + propagated).
        channels (int): Channels of the refined task features.
        norm_cfg (dict): Norm layer config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        task_channels: Dict[str, int],
        in_channels: int,
        channels: int,
        norm_cfg: dict = dict(type='BN'),
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        self.refinement = nn.ModuleDict(
            {
                task: ResLayer(
                    BasicBlock, in_channels, channels, 2, norm_cfg=norm_cfg
                )
                for task in task_channels
            }
        )
        self.decoders = nn.ModuleDict(
            {
                task: nn.Conv2d(channels, out_channels, 1)
                for task, out_channels in task_channels.items()
            }
        )

    def forward(
        self, x: Tensor, propagated: Optional[TaskMaps] = None
    ) -> Tuple[TaskMaps, TaskMaps]:
        features, logits = {}, {}
        for task, refine in self.refinement.items():
            inputs = x
            if propagated is not None:
                coarser = F.interpolate(
                    propagated[task],
                    size=x.shape[-2:],
                    mode='bilinear',
                    align_corners=False,
                )
                inputs = torch.cat([x, coarser], dim=1)
            features[task] = refine(inputs)
            logits[task] = self.decoders[task](features[task])
        return features, logits


class FeaturePropagation(BaseModule):
    """MTI-Net's feature propagation module (FPM) at one scale.

    The tasks' features (T maps of C channels) are concatenated task-major;
    two basic blocks (T*C -> T*C/4) and a 1x1 conv (-> T*C) give, for each
    of the C channels, a softmax over the T tasks that weighs the tasks'
    features; a basic block reduces the weighted stack to C channels; each
    task adds a squeeze-and-excitation recalibrated copy to its features.

    Args:
        task_names (Sequence[str]): Task names.
        channels (int): C, channels per task.
        se_ratio (int): Squeeze ratio of the SE layers. Default: 16.
        norm_cfg (dict): Norm layer config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        task_names: Sequence[str],
        channels: int,
        se_ratio: int = 16,
        norm_cfg: dict = dict(type='BN'),
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        self.task_names = list(task_names)
        shared = len(self.task_names) * channels
        self.non_linear = nn.Sequential(
            *ResLayer(BasicBlock, shared, shared // 4, 2, norm_cfg=norm_cfg),
            nn.Conv2d(shared // 4, shared, 1),
        )
        self.dimensionality_reduction = ResLayer(
            BasicBlock, shared, channels, 1, norm_cfg=norm_cfg
        )[0]
        self.se = nn.ModuleDict(
            {
                task: SELayer(
                    channels, squeeze_channels=channels // se_ratio, bias=True
                )
                for task in self.task_names
            }
        )

    def forward(self, features: TaskMaps) -> TaskMaps:
        stacked = torch.cat([features[t] for t in self.task_names], dim=1)
        b, c, h, w = stacked.shape
        num_tasks = len(self.task_names)
        # The reference views the task-major stack as (C, T) pairs, so the
        # softmax runs over groups of T consecutive stacked channels.
        mask = self.non_linear(stacked).view(
            b, c // num_tasks, num_tasks, h, w
        )
        weighted = mask.softmax(dim=2) * stacked.view_as(mask)
        shared = self.dimensionality_reduction(weighted.view(b, c, h, w))
        return {
            task: self.se[task](shared) + features[task]
            for task in self.task_names
        }


class MultiScaleTaskFeatures(BaseModule):
    """MTI-Net's multi-scale initial predictions and feature propagation.

    Shared by :class:`MTINetDecoder` and the multi-scale CTAL decoder.

    Args:
        task_channels (dict[str, int]): Output channels per task.
        in_channels (Sequence[int]): Channels of the backbone maps, finest
            first.
        norm_cfg (dict): Norm layer config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        task_channels: Dict[str, int],
        in_channels: Sequence[int],
        norm_cfg: dict = dict(type='BN'),
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        self.in_channels = list(in_channels)
        num_scales = len(self.in_channels)
        self.scales = nn.ModuleList(
            [
                ScaleTaskRefinement(
                    task_channels,
                    self.in_channels[i]
                    + (self.in_channels[i + 1] if i + 1 < num_scales else 0),
                    self.in_channels[i],
                    norm_cfg=norm_cfg,
                )
                for i in range(num_scales)
            ]
        )
        # propagation[i] carries scale i + 1's task features to scale i.
        self.propagation = nn.ModuleList(
            [
                FeaturePropagation(
                    list(task_channels),
                    self.in_channels[i + 1],
                    norm_cfg=norm_cfg,
                )
                for i in range(num_scales - 1)
            ]
        )

    def forward(
        self, inputs: Sequence[Tensor]
    ) -> Tuple[List[TaskMaps], List[TaskMaps]]:
        """Return per-scale task features and logits, finest scale first."""
        if len(inputs) != len(self.in_channels):
            shapes = [tuple(x.shape) for x in inputs]
            raise ValueError(
                f'{type(self).__name__} expects {len(self.in_channels)} '
                f'backbone maps with channels {self.in_channels}, got '
                f'{shapes}; give the backbone that many out_indices and no '
                'fusing neck.'
            )
        num_scales = len(self.in_channels)
        features: List[Optional[TaskMaps]] = [None] * num_scales
        logits: List[Optional[TaskMaps]] = [None] * num_scales
        propagated = None
        for i in reversed(range(num_scales)):
            features[i], logits[i] = self.scales[i](inputs[i], propagated)
            if i > 0:
                propagated = self.propagation[i - 1](features[i])
        return features, logits


@MODELS.register_module()
class MTINetDecoder(BaseMultiTaskDecoder):
    """MTI-Net decoder on the multi-scale maps of an HRNet backbone.

    Args:
        tasks (dict): The model's task spec, ``{name: dict(channels=...)}``.
        in_channels (Sequence[int]): Channels of the backbone maps, finest
            first. Default: HRNet-W18's (18, 36, 72, 144).
        head (dict): Final head config, built per task with ``in_channels``
            and ``out_channels``; it receives the task's list of maps.
        norm_cfg (dict): Norm layer config.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        tasks: Mapping[str, Mapping],
        in_channels: Sequence[int] = (18, 36, 72, 144),
        head: dict = dict(type='HRNetTaskHead'),
        norm_cfg: dict = dict(type='BN'),
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(tasks, init_cfg)
        self.multi_scale = MultiScaleTaskFeatures(
            self.task_channels, in_channels, norm_cfg=norm_cfg
        )
        self.distillation = nn.ModuleList(
            [
                MultiModalDistillation(self.task_names, channels)
                for channels in in_channels
            ]
        )
        self.heads = self.build_per_task(head, in_channels=list(in_channels))

    def forward(
        self, inputs: Sequence[Tensor]
    ) -> Dict[str, Dict[str, Tensor]]:
        features, logits = self.multi_scale(inputs)
        distilled = [
            distill(scale_features)
            for distill, scale_features in zip(self.distillation, features)
        ]
        stages = {f'scale_{i}': scale for i, scale in enumerate(logits)}
        stages['final'] = {
            task: head([scale[task] for scale in distilled])
            for task, head in self.heads.items()
        }
        return stages
