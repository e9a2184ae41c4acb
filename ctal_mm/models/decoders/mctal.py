"""M-CTAL: CTAL on MTI-Net's multi-scale initial task predictions.

The CTAL reference's multi-scale variant for HRNet-W18 (maps of 18, 36, 72,
144 channels at strides 4..32):

1. MTI-Net's per-scale task refinement and initial predictions, coarsest
   first, with feature propagation between scales (stages ``scale_0`` ..
   ``scale_3``, finest first; the reference averages their losses);
2. per task, an HRNet fuse of the task's four maps into one 270-channel map
   at stride 4 (no distillation);
3. the cross-task affinity module of CTAL on these maps (270 -> 128
   channels, N = h*w positions at stride 4), upsampled to stride 2;
4. a final head per task (stage ``final``).

As in CTAL, the affinity fusion conv has one kernel per position, so a built
model accepts one input size (``affinity.feature_size`` = input / 4).
"""

from typing import Dict, Mapping, Optional, Sequence

from torch import Tensor, nn

from ctal_mm.registry import MODELS

from .base import BaseMultiTaskDecoder
from .ctal import CrossTaskAffinityModule
from .mtinet import MultiScaleTaskFeatures


@MODELS.register_module()
class MultiScaleCTALDecoder(BaseMultiTaskDecoder):
    """M-CTAL decoder on the multi-scale maps of an HRNet backbone.

    Args:
        tasks (dict): The model's task spec, ``{name: dict(channels=...)}``.
        in_channels (Sequence[int]): Channels of the backbone maps, finest
            first. Default: HRNet-W18's (18, 36, 72, 144).
        scale_fusion (dict): Config of the per-task fuse of the task's
            multi-scale maps, built with ``in_channels``; its output has
            ``sum(in_channels)`` channels.
        affinity (dict): Arguments of
            :class:`~ctal_mm.models.decoders.ctal.CrossTaskAffinityModule`
            (``feature_size`` is required: input size / 4); ``in_channels``
            defaults to ``sum(in_channels)``.
        final_head (dict): Final head config, built per task with
            ``in_channels=affinity['channels']`` and ``out_channels``.
        norm_cfg (dict): Norm layer config of the multi-scale part.
        init_cfg (dict, optional): Initialisation config.
    """

    fixed_size_module = 'affinity'

    def __init__(
        self,
        tasks: Mapping[str, Mapping],
        in_channels: Sequence[int] = (18, 36, 72, 144),
        scale_fusion: dict = dict(type='HRNetFuseNeck'),
        affinity: dict = dict(),
        final_head: dict = dict(type='BottleneckTaskHead'),
        norm_cfg: dict = dict(type='BN'),
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(tasks, init_cfg)
        in_channels = list(in_channels)
        self.multi_scale = MultiScaleTaskFeatures(
            self.task_channels, in_channels, norm_cfg=norm_cfg
        )
        self.scale_fusion = nn.ModuleDict(
            {
                task: MODELS.build(dict(scale_fusion, in_channels=in_channels))
                for task in self.task_names
            }
        )
        affinity = dict(affinity)
        affinity.setdefault('in_channels', sum(in_channels))
        self.affinity = CrossTaskAffinityModule(self.task_names, **affinity)
        self.final_heads = self.build_per_task(
            final_head, in_channels=affinity.get('channels', 128)
        )

    def forward(
        self, inputs: Sequence[Tensor]
    ) -> Dict[str, Dict[str, Tensor]]:
        features, logits = self.multi_scale(inputs)
        fused = {
            task: fuse([scale[task] for scale in features])
            for task, fuse in self.scale_fusion.items()
        }
        refined = self.affinity(fused)
        stages = {f'scale_{i}': scale for i, scale in enumerate(logits)}
        stages['final'] = {
            task: head(refined[task])
            for task, head in self.final_heads.items()
        }
        return stages
