"""The neck of HRNet's segmentation model: all branches at the finest stride, fused."""

import warnings
from typing import List, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from ctal_mm.registry import MODELS


@MODELS.register_module()
class HRNetFuseNeck(BaseModule):
    """Upsample the coarser HRNet maps to the finest one, concatenate, 1x1 conv + BN + ReLU.

    For HRNet-W18-small-v2 the four maps (18, 36, 72, 144 channels at strides 4..32) become
    one 270-channel map at stride 4, as in the CTAL reference.

    Args:
        in_channels: channels of the maps, finest first.
        norm_cfg: normalisation after the 1x1 conv.
        align_corners: of the bilinear upsampling.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        norm_cfg: dict = dict(type='BN'),
        align_corners: bool = False,
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        self.in_channels = list(in_channels)
        self.align_corners = align_corners
        channels = sum(self.in_channels)
        self.out_channels = channels
        # bias=True: the reference's fuse conv has a bias even though BN follows, and its
        # checkpoints hold that bias (neck.fuse.conv.bias), so it stays; mmcv's ConvModule warns
        # "Unnecessary conv bias before batch/instance norm" for exactly this, filtered here.
        with warnings.catch_warnings():
            warnings.filterwarnings(
                'ignore', message='Unnecessary conv bias', category=UserWarning
            )
            self.fuse = ConvModule(
                channels,
                channels,
                1,
                bias=True,
                norm_cfg=norm_cfg,
                act_cfg=dict(type='ReLU'),
            )

    def forward(self, inputs: List[Tensor]) -> Tensor:
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f'HRNetFuseNeck expects {len(self.in_channels)} feature maps with channels '
                f'{self.in_channels}, got {len(inputs)}; check model.neck.in_channels against the '
                'backbone.'
            )
        size = inputs[0].shape[-2:]
        maps = [inputs[0]] + [
            F.interpolate(
                x, size=size, mode='bilinear', align_corners=self.align_corners
            )
            for x in inputs[1:]
        ]
        return self.fuse(torch.cat(maps, dim=1))
