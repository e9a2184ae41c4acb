"""CTAL: Cross-Task Affinity Learning (Sinodinos & Armanfard, WACV 2025).

Per task t the affinity module projects the task features to ``channels`` (X_t), computes the
cosine affinity A_t = X_t^T X_t between all N = h*w positions, fuses the T affinities of each
position p with one learned 3x3xT kernel (a grouped conv with N groups over the interleaved
maps) into M, attends V_t = conv3x3(X_t) with it (Z_t = V_t M^T), blends
X'_t = gamma Z_t + (1 - gamma) X_t and upsamples x2.

Two implementations of the same function:
- ``'plain'`` materialises the T N x N affinities and M, as the reference does;
- ``'factored'`` never forms an N x N matrix: every A_t has rank C, so Z is computed from
  9 T^2 small C x C products and the features scaled by the fusion weights
  (``factored_affinity.py``): memory linear in N, and fewer operations whenever
  9 T C < N (NYUv2, NYUD-MT). Measured: docs/benchmarks.md.
"""

from typing import Dict, Mapping, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from ctal_mm.registry import MODELS

from ..activation_checkpoint import checkpointed
from .base import TwoStageDecoder
from .factored_affinity import factored_affinity_attention


@MODELS.register_module()
class CrossTaskAffinityModule(BaseModule):
    """The affinity learning module of CTAL.

    Args:
        tasks: task names, in the order their affinities are interleaved.
        in_channels: channels of each task's features.
        channels: channels after the per-task projection.
        feature_size: (h, w) of the features: the fusion conv has h*w groups, so a built module
            accepts this size only.
        gamma: fixed blend weight of the attended features.
        conv_in_norm: BN + ReLU after the projection (the transformer tree).
        implementation: ``'plain'`` or ``'factored'``.
        with_cp: recompute the upsampling (transposed conv, BN, ReLU) of the
            output convolutions in backward instead of keeping its
            activations. The last 3x3 conv is not recomputed: it is the most
            expensive layer of the decoder and its input is needed for its
            weight gradient anyway.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        in_channels: int = 256,
        channels: int = 128,
        feature_size: Tuple[int, int] = (72, 96),
        gamma: float = 0.05,
        conv_in_norm: bool = False,
        implementation: str = 'plain',
        with_cp: bool = False,
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        if implementation not in ('plain', 'factored'):
            raise ValueError(
                f"implementation must be 'plain' or 'factored', got "
                f'{implementation!r}.'
            )
        self.tasks = list(tasks)
        self.feature_size = tuple(feature_size)
        self.num_positions = self.feature_size[0] * self.feature_size[1]
        self.gamma = gamma
        self.implementation = implementation
        self.with_cp = with_cp
        T, N = len(self.tasks), self.num_positions

        def conv_in():
            if conv_in_norm:
                return nn.Sequential(
                    nn.Conv2d(in_channels, channels, 1),
                    nn.BatchNorm2d(channels),
                    nn.ReLU(inplace=True),
                )
            return nn.Conv2d(in_channels, channels, 1)

        self.conv_in = nn.ModuleDict({t: conv_in() for t in self.tasks})
        self.projection = nn.ModuleDict(
            {
                t: nn.Conv2d(channels, channels, 3, padding=1)
                for t in self.tasks
            }
        )
        # One 3x3xT kernel per position p: groups=N over channels interleaved (p, t).
        self.fusion = nn.Conv2d(T * N, N, 3, padding=1, groups=N)
        self.conv_out = nn.ModuleDict(
            {
                t: nn.Sequential(
                    nn.ConvTranspose2d(channels, channels, 2, stride=2),
                    nn.BatchNorm2d(channels),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(channels, channels, 3, padding=1),
                )
                for t in self.tasks
            }
        )

    def check_size(self, x: Tensor) -> None:
        # the model checks its inputs first (MultiTaskEncoderDecoder.decode),
        # naming the input size; this guards the module used on its own
        h, w = x.shape[-2:]
        if (h, w) != self.feature_size:
            H, W = self.feature_size
            raise ValueError(
                f'CTAL was built for {H}x{W} features (N={self.num_positions} '
                'positions: its fusion conv has one kernel per position) but '
                f'got {h}x{w}. Set feature_size to the features it is given, '
                'or give it features of this size.'
            )

    def attend(self, features: Tensor, values: Tensor) -> Tensor:
        """Z = V M^T for all tasks: features B x T x C x N (normalised over C
        here), values B x T x C x N."""
        if self.implementation == 'factored':
            # normalises inside, so autograd keeps the features only once
            return factored_affinity_attention(
                features,
                values,
                self.fusion.weight,
                self.fusion.bias,
                self.feature_size,
            )
        # plain: the T affinities A_t = X_t^T X_t, interleaved per row p as
        # (p, t) channels over the h x w grid of q, fused by the grouped conv
        B, T, C, N = features.shape
        normed = F.normalize(features, dim=2)
        affinity = torch.einsum('btcp,btcq->bptq', normed, normed)
        fused = self.fusion(affinity.reshape(B, N * T, *self.feature_size))
        M = fused.reshape(B, N, N)
        return torch.einsum('btci,bji->btcj', values, M)

    def forward(
        self, task_features: Mapping[str, Tensor]
    ) -> Dict[str, Tensor]:
        projected = [self.conv_in[t](task_features[t]) for t in self.tasks]
        self.check_size(projected[0])
        # one B x T x C x h x w copy: the value projections and the blend
        # read it through views, so autograd keeps no second copy
        stacked = torch.stack(projected, 1)
        del projected
        B, T, C, h, w = stacked.shape
        x = stacked.unbind(1)
        values = torch.stack(
            [self.projection[t](x[i]) for i, t in enumerate(self.tasks)], 1
        )
        attended = self.attend(stacked.flatten(3), values.flatten(3))
        attended = attended.reshape(B, T, C, h, w)
        out = {}
        for i, t in enumerate(self.tasks):
            blended = self.gamma * attended[:, i] + (1 - self.gamma) * x[i]
            if self.with_cp:
                upsample, conv = self.conv_out[t][:-1], self.conv_out[t][-1]
                out[t] = conv(checkpointed(upsample, blended))
            else:
                out[t] = self.conv_out[t](blended)
        return out


@MODELS.register_module()
class CTALDecoder(TwoStageDecoder):
    """Initial task heads -> cross-task affinity module -> final task heads.

    Args:
        tasks: the model's task spec.
        in_channels: channels of the shared feature map (270 for HRNet-W18 + fuse neck).
        initial_head: config of the initial heads (features of ``affinity.in_channels``).
        final_head: config of the final heads (input: ``affinity.channels``).
        affinity: arguments of :class:`CrossTaskAffinityModule` (feature_size, gamma, ...);
            ``in_channels`` defaults to the initial head's ``channels``.
        with_cp: activation checkpointing: keep only the inputs of each head
            and of the affinity module's upsampling, and recompute them in
            backward (same results, less memory, a little more time).
    """

    fixed_size_module = 'affinity'

    def __init__(
        self,
        tasks: Mapping[str, Mapping],
        in_channels: int = 270,
        initial_head: dict = dict(type='BottleneckTaskHead', channels=256),
        final_head: dict = dict(type='BottleneckTaskHead'),
        affinity: dict = dict(),
        with_cp: bool = False,
        init_cfg=None,
    ):
        affinity = dict(affinity)
        affinity.setdefault('with_cp', with_cp)
        affinity.setdefault('in_channels', initial_head.get('channels', 256))
        super().__init__(
            tasks,
            in_channels=in_channels,
            initial_head=initial_head,
            final_head=final_head,
            cross_task=affinity,
            with_cp=with_cp,
            init_cfg=init_cfg,
        )

    def build_cross_task(self, **affinity) -> int:
        self.affinity = CrossTaskAffinityModule(self.task_names, **affinity)
        return affinity.get('channels', 128)

    def cross_task(self, features: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        return self.affinity(features)
