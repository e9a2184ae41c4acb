"""Per-task prediction heads: residual bottleneck heads (CNN tree), DeepLab-v3 heads (Swin) and
HRNet's segmentation head (the HPS and STL baselines)."""

from typing import Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.models.backbones.resnet import Bottleneck
from mmseg.models.decode_heads.aspp_head import ASPPModule
from torch import Tensor

from ctal_mm.registry import MODELS


@MODELS.register_module()
class BottleneckTaskHead(BaseModule):
    """``num_blocks`` ResNet bottleneck blocks, then a 1x1 conv to the task's channels.

    The CTAL reference's task heads: initial heads 270 -> 256 (mid width 64, 1x1 conv + BN
    projection shortcut) -> 256; final heads 128 -> 128 (mid width 32). mmseg's ResNet
    ``Bottleneck`` (expansion 4) is exactly that block.

    Args:
        in_channels: input channels.
        out_channels: the task's output channels.
        channels: output channels of the blocks (the task features); default ``in_channels``.
        num_blocks: number of bottleneck blocks.
        norm_cfg: normalisation in the blocks.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: Optional[int] = None,
        num_blocks: int = 2,
        norm_cfg: dict = dict(type='BN'),
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        channels = channels or in_channels
        if channels % Bottleneck.expansion:
            raise ValueError(
                f'BottleneckTaskHead: channels={channels} must be a multiple of '
                f'{Bottleneck.expansion} (the bottleneck expansion).'
            )
        planes = channels // Bottleneck.expansion
        blocks = []
        for i in range(num_blocks):
            inplanes = in_channels if i == 0 else channels
            downsample = None
            if inplanes != channels:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, channels, 1, bias=False),
                    nn.BatchNorm2d(channels)
                    if norm_cfg.get('type') == 'BN'
                    else MODELS.build(dict(norm_cfg, num_features=channels)),
                )
            blocks.append(
                Bottleneck(
                    inplanes, planes, downsample=downsample, norm_cfg=norm_cfg
                )
            )
        self.layers = nn.Sequential(*blocks)
        self.conv_out = nn.Conv2d(channels, out_channels, 1)
        self.channels = channels

    def forward(
        self, x: Tensor, return_features: bool = False
    ) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        features = self.layers(x)
        logits = self.conv_out(features)
        return (features, logits) if return_features else logits


@MODELS.register_module()
class DeepLabTaskHead(BaseModule):
    """DeepLab-v3 head for one task, as the CTAL transformer tree uses for its final heads.

    ASPP (1x1 branch, three dilated 3x3 branches, image pooling; each ``channels`` wide with
    BN + ReLU), projection of the five branches to ``channels`` + BN + ReLU + dropout, 3x3 conv
    (no bias) + BN + ReLU, 1x1 conv to the task's channels.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        channels: int = 256,
        dilations=(12, 24, 36),
        dropout_ratio: float = 0.5,
        norm_cfg: dict = dict(type='BN'),
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        act_cfg = dict(type='ReLU')
        self.aspp = ASPPModule(
            (1,) + tuple(dilations),
            in_channels,
            channels,
            norm_cfg=norm_cfg,
            conv_cfg=None,
            act_cfg=act_cfg,
        )
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvModule(
                in_channels, channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg
            ),
        )
        self.project = nn.Sequential(
            ConvModule(
                (len(dilations) + 2) * channels,
                channels,
                1,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
            ),
            nn.Dropout(dropout_ratio),
        )
        self.conv = ConvModule(
            channels,
            channels,
            3,
            padding=1,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
        )
        self.conv_out = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        import torch
        import torch.nn.functional as F

        pooled = F.interpolate(
            self.image_pool(x),
            size=x.shape[-2:],
            mode='bilinear',
            align_corners=False,
        )
        branches = self.aspp(x) + [pooled]
        return self.conv_out(
            self.conv(self.project(torch.cat(branches, dim=1)))
        )


@MODELS.register_module()
class HRNetTaskHead(BaseModule):
    """HRNet's segmentation head for one task.

    Resize the multi-scale maps to the finest one, concatenate, 1x1 conv
    (with bias), BN, ReLU (the fuse neck), then a 1x1 conv to the task's
    channels.

    Args:
        in_channels (Sequence[int]): Channels of the maps, finest first.
        out_channels (int): The task's output channels.
        fuse (dict): Config of the fusing module, built with
            ``in_channels``. Default: ``HRNetFuseNeck``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        fuse: dict = dict(type='HRNetFuseNeck'),
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        self.fuse = MODELS.build(dict(fuse, in_channels=list(in_channels)))
        self.conv_out = nn.Conv2d(sum(in_channels), out_channels, 1)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        return self.conv_out(self.fuse(list(inputs)))
