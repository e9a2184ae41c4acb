"""InvPT (Ye & Xu, ECCV 2022): the UP-Transformer decoder on a plain ViT.

Of the ViT's four outputs (three intermediate blocks and the normed last),
the last, at 1/16, is resized to half its grid (1/32); per task two conv
blocks give the task features and a 1x1 conv the intermediate prediction
(stage ``initial``). Features and prediction, mixed per task, enter three
UP-Transformer stages at 1/32, 1/16 and 1/8: each stage (but the first)
doubles the resolution of every task map (``UpEmbed``) and adds the
backbone's matching map (``scale_embed``), then one block attends over the
tokens of all tasks together, with queries from a strided depthwise conv
and keys / values average-pooled to the first stage's grid, and fuses its
attention scores with the previous stage's, upsampled. Each stage's task
maps, normed across tasks, are brought to the first stage's channels and
summed at 1/4; a 3x3 conv block and a 1x1 conv per task predict (stage
``final``). Both stages take the task's loss at its weight, as InvPT's
``MultiTaskLoss`` with ``intermediate_supervision``.

Built as the official ``TransformerDecoder`` + ``InvPT`` + ``MLPHead``
(``prismformore/Multi-Task-Transformer``, InvPT/), submodule by submodule,
so its parameters and state dict correspond one to one
(``tools/model_converters/mtt2mm.py``). The official code builds a few
modules its forward never uses (the second backbone skip projection
``scale_embed.2``, ``invpt.norm_mt``, the first stage's channel
reductions ``invpt.redu_chan.0`` and its attention fusion, which has no
previous scores to fuse); they are built here too, so that the
parameter counts and checkpoints match, and frozen
(``requires_grad=False``), so that distributed training needs no
``find_unused_parameters``.
"""

from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from timm.layers import trunc_normal_
from torch import Tensor

from ctal_mm.registry import MODELS

from .base import BaseMultiTaskDecoder

TaskMaps = Dict[str, Tensor]


def _resize(x: Tensor, size) -> Tensor:
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def _tokens(x: Tensor) -> Tensor:
    """``(B, C, h, w)`` -> ``(B, h*w, C)``."""
    return x.flatten(2).transpose(1, 2)


def _map(x: Tensor, h: int, w: int) -> Tensor:
    """``(B, h*w, C)`` -> ``(B, C, h, w)``."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


def conv_bn_relu(
    in_channels: int,
    out_channels: int,
    norm_cfg: dict,
    bias: bool = False,
) -> nn.Sequential:
    """3x3 conv, norm, ReLU (the official ``ConvBlock`` / ``mt_proj``)."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias),
            bn=build_norm_layer(norm_cfg, out_channels)[1],
            relu=nn.ReLU(inplace=True),
        )
    )


class UpEmbed(nn.Module):
    """x2 bilinear upsampling, then two dilated 3x3 conv + norm + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict):
        super().__init__()
        layers = [nn.Upsample(scale_factor=2, mode='bilinear')]
        for c_in in (in_channels, out_channels):
            layers += [
                nn.Conv2d(
                    c_in, out_channels, 3, padding=2, dilation=2, bias=False
                ),
                build_norm_layer(norm_cfg, out_channels)[1],
                nn.ReLU(inplace=True),
            ]
        # indices 1, 2, 4, 5 hold the weights, as the official ``proj``
        self.proj = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MultiTaskAttention(nn.Module):
    """Attention over the tokens of all tasks, fused with the previous
    stage's attention scores.

    Queries: per task a strided depthwise 3x3 conv + norm (``conv_proj_q``);
    keys and values: per task an average pooling of ``kv_stride``. The
    scores (scaled by ``channels ** -0.5``, as the official code) are
    returned for the next stage; this stage's are fused with the previous
    ones (upsampled x2 along the query grid) by a 1x1 conv over the heads.
    """

    def __init__(
        self,
        num_tasks: int,
        channels: int,
        num_heads: int,
        kv_stride: int,
        norm_cfg: dict,
        q_stride: int = 2,
    ):
        super().__init__()
        self.num_tasks = num_tasks
        self.num_heads = num_heads
        self.kv_stride = kv_stride
        self.q_stride = q_stride
        self.scale = channels**-0.5
        self.conv_proj_q = nn.ModuleList(
            nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(
                        channels,
                        channels,
                        3,
                        padding=1,
                        stride=q_stride,
                        bias=False,
                        groups=channels,
                    ),
                    bn=build_norm_layer(norm_cfg, channels)[1],
                )
            )
            for _ in range(num_tasks)
        )
        self.proj_q = nn.Linear(channels, channels)
        self.proj_k = nn.Linear(channels, channels)
        self.proj_v = nn.Linear(channels, channels)
        self.proj = nn.Linear(channels, channels)
        self.fuse_attn = nn.Conv2d(num_heads * 2, num_heads, 1)

    def _heads(self, x: Tensor) -> Tensor:
        B, N, C = x.shape
        return x.reshape(B, N, self.num_heads, C // self.num_heads).transpose(
            1, 2
        )

    def forward(self, maps: List[Tensor], previous: Optional[Tensor]) -> tuple:
        """``maps``: per task ``(B, C, h, w)`` (normed); returns the output
        tokens ``(B, T * h/2 * w/2, C)`` and this stage's scores."""
        q = torch.cat(
            [_tokens(proj(x)) for proj, x in zip(self.conv_proj_q, maps)], 1
        )
        kv = torch.cat(
            [
                _tokens(
                    F.avg_pool2d(
                        x, self.kv_stride, self.kv_stride, ceil_mode=True
                    )
                )
                for x in maps
            ],
            1,
        )
        q = self._heads(self.proj_q(q))
        k = self._heads(self.proj_k(kv))
        v = self._heads(self.proj_v(kv))
        scores = (q @ k.transpose(-2, -1)) * self.scale
        if previous is not None:
            scores = self.fuse_attn(
                torch.cat([scores, self._upsample(previous, maps)], dim=1)
            )
        out = scores.softmax(dim=-1) @ v
        B, _, N, _ = out.shape
        out = out.transpose(1, 2).reshape(B, N, -1)
        return self.proj(out), scores

    def _upsample(self, scores: Tensor, maps: List[Tensor]) -> Tensor:
        """The previous stage's scores on this stage's query grid."""
        h, w = maps[0].shape[-2:]
        sh, sw = h // 4, w // 4  # previous query grid: half this one
        B, heads, _, keys = scores.shape
        parts = []
        for part in scores.chunk(self.num_tasks, dim=2):
            part = part.permute(0, 1, 3, 2).reshape(B * heads, keys, sh, sw)
            part = F.interpolate(
                part, scale_factor=2, mode='bilinear', align_corners=False
            )
            parts.append(part.reshape(B, heads, keys, -1).permute(0, 1, 3, 2))
        return torch.cat(parts, dim=2)


class InvPTBlock(nn.Module):
    """Norm, multi-task attention (output upsampled back to the grid),
    residual; norm, MLP, residual; on every task's tokens.

    ``attention``: the other arguments of :class:`MultiTaskAttention`.
    """

    def __init__(
        self,
        num_tasks: int,
        channels: int,
        mlp_ratio: float = 4.0,
        **attention,
    ):
        super().__init__()
        self.num_tasks = num_tasks
        self.norm1 = nn.LayerNorm(channels)
        self.attn = MultiTaskAttention(num_tasks, channels, **attention)
        self.norm2 = nn.LayerNorm(channels)
        self.mlp = Mlp(channels, int(channels * mlp_ratio))

    def forward(self, maps: List[Tensor], previous: Optional[Tensor]):
        h, w = maps[0].shape[-2:]
        x = torch.cat([_tokens(m) for m in maps], dim=1)
        normed = self.norm1(x).chunk(self.num_tasks, dim=1)
        attn, scores = self.attn([_map(t, h, w) for t in normed], previous)
        q = self.attn.q_stride
        sh, sw = h // q, w // q
        attn = torch.cat(
            [
                _tokens(_resize(_map(t, sh, sw), (h, w)))
                for t in attn.chunk(self.num_tasks, dim=1)
            ],
            dim=1,
        )
        x = x + attn
        x = x + self.mlp(self.norm2(x))
        return [_map(t, h, w) for t in x.chunk(self.num_tasks, dim=1)], scores


class InvPTStage(nn.Module):
    def __init__(
        self,
        num_tasks: int,
        in_channels: int,
        channels: int,
        num_heads: int,
        kv_stride: int,
        norm_cfg: dict,
        upsample: bool,
    ):
        super().__init__()
        self.patch_embed = (
            nn.ModuleList(
                UpEmbed(in_channels, channels, norm_cfg)
                for _ in range(num_tasks)
            )
            if upsample
            else None
        )
        self.blocks = nn.ModuleList(
            [
                InvPTBlock(
                    num_tasks,
                    channels,
                    num_heads=num_heads,
                    kv_stride=kv_stride,
                    norm_cfg=norm_cfg,
                )
            ]
        )

    def forward(self, maps, previous, skip: Optional[Tensor]):
        if self.patch_embed is not None:
            maps = [
                embed(x) + skip for embed, x in zip(self.patch_embed, maps)
            ]
        for block in self.blocks:
            maps, previous = block(maps, previous)
        return maps, previous


class InvPTTransformer(nn.Module):
    """The three UP-Transformer stages and the per-task output convs (the
    official ``InvPT`` module)."""

    def __init__(
        self,
        task_channels: Mapping[str, int],
        task_feature_channels: int,
        channels: int,
        num_heads: Sequence[int],
        kv_strides: Sequence[int],
        norm_cfg: dict,
    ):
        super().__init__()
        tasks = list(task_channels)
        T = len(tasks)
        dims = [channels // 2**i for i in range(len(num_heads))]
        self.stage_channels = dims
        self.mix_proj = nn.ModuleDict(
            {
                t: nn.Sequential(
                    nn.Conv2d(task_feature_channels + c, channels, 1)
                )
                for t, c in task_channels.items()
            }
        )
        self.invpt_stages = nn.ModuleList()
        self.norm_mts = nn.ModuleList()
        self.redu_chan = nn.ModuleList()
        in_channels = channels
        for i, (dim, heads, stride) in enumerate(
            zip(dims, num_heads, kv_strides)
        ):
            self.invpt_stages.append(
                InvPTStage(T, in_channels, dim, heads, stride, norm_cfg, i > 0)
            )
            self.norm_mts.append(nn.LayerNorm(dim * T))
            self.redu_chan.append(
                nn.ModuleList(nn.Conv2d(dim, channels, 1) for _ in tasks)
            )
            in_channels = dim
        # built by the official code, not used by its forward
        self.norm_mt = nn.LayerNorm(in_channels * T)
        first_fuse = self.invpt_stages[0].blocks[0].attn.fuse_attn
        for unused in (self.norm_mt, self.redu_chan[0], first_fuse):
            unused.requires_grad_(False)
        self.mt_proj = nn.ModuleDict(
            {
                t: conv_bn_relu(channels, channels, norm_cfg, bias=True)
                for t in tasks
            }
        )

    def forward(
        self,
        features: TaskMaps,
        initial: TaskMaps,
        skips: Sequence[Tensor],
    ) -> TaskMaps:
        tasks = list(self.mix_proj)
        maps = [
            self.mix_proj[t](torch.cat([features[t], initial[t]], dim=1))
            for t in tasks
        ]
        h, w = maps[0].shape[-2:]
        size = (
            h * 2 ** len(self.invpt_stages),
            w * 2 ** len(self.invpt_stages),
        )
        summed = {t: 0 for t in tasks}
        scores = None
        for i, stage in enumerate(self.invpt_stages):
            maps, scores = stage(maps, scores, skips[i])
            sh, sw = maps[0].shape[-2:]
            x = self.norm_mts[i](torch.cat([_tokens(m) for m in maps], dim=2))
            for j, (t, part) in enumerate(
                zip(tasks, x.chunk(len(tasks), dim=2))
            ):
                part = _map(part, sh, sw)
                if i > 0:
                    part = self.redu_chan[i][j](part)
                summed[t] = summed[t] + _resize(part, size)
        return {t: self.mt_proj[t](summed[t]) for t in tasks}


@MODELS.register_module()
class InvPTDecoder(BaseMultiTaskDecoder):
    """InvPT's decoder and task heads on a ViT's four outputs.

    Args:
        tasks (dict): The model's task spec, ``{name: dict(channels=...)}``,
            in the official task order (it orders the tokens and the
            cross-task LayerNorms).
        in_channels (int): The ViT's channels (1024 for ViT-L).
        embed_dims (int): Channels of the task features (the yml's
            ``embed_dim``, 512).
        pred_channels (int): Added to ``embed_dims`` for the first stage's
            channels (the official ``PRED_OUT_NUM_CONSTANT``, 64).
        num_heads (Sequence[int]): Heads per stage (2, 2, 2); the stages
            have ``C, C/2, C/4`` channels, ``C = embed_dims +
            pred_channels``.
        kv_strides (Sequence[int]): Key / value pooling per stage (2, 4, 8).
        norm_cfg (dict): The BatchNorm layers (the official code uses
            SyncBatchNorm: ``dict(type='SyncBN')`` for several GPUs).
        task_order (Sequence[str], optional): The order of the tasks in the
            decoder's per-task lists and cross-task norms, if not the
            model's (PASCAL-Context's ``task_specs`` run in the CTAL
            reference's order; the official InvPT order is
            semseg, human_parts, saliency, normals, edge).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        tasks: Mapping[str, Mapping],
        in_channels: int = 1024,
        embed_dims: int = 512,
        pred_channels: int = 64,
        num_heads: Sequence[int] = (2, 2, 2),
        kv_strides: Sequence[int] = (2, 4, 8),
        norm_cfg: dict = dict(type='BN'),
        task_order: Optional[Sequence[str]] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(tasks, init_cfg)
        if task_order is not None:
            if sorted(task_order) != sorted(self.task_names):
                raise ValueError(
                    f'InvPTDecoder: task_order={tuple(task_order)} must '
                    f'list the model tasks {tuple(self.task_names)}, each '
                    'once.'
                )
            self.task_channels = OrderedDict(
                (t, self.task_channels[t]) for t in task_order
            )
            self.task_names = list(task_order)
        if len(num_heads) != 3 or len(kv_strides) != 3:
            raise ValueError(
                'InvPTDecoder: num_heads and kv_strides need one entry per '
                f'stage (3), got {tuple(num_heads)} and {tuple(kv_strides)}.'
            )
        channels = embed_dims + pred_channels
        self.intermediate_head = nn.ModuleDict()
        self.preliminary_decoder = nn.ModuleDict()
        self.invpt = InvPTTransformer(
            self.task_channels,
            embed_dims,
            channels,
            num_heads,
            kv_strides,
            norm_cfg,
        )
        for task, out in self.task_channels.items():
            self.intermediate_head[task] = nn.Conv2d(embed_dims, out, 1)
            self.preliminary_decoder[task] = nn.Sequential(
                conv_bn_relu(in_channels, in_channels, norm_cfg),
                conv_bn_relu(in_channels, embed_dims, norm_cfg),
            )
        dims = self.invpt.stage_channels
        # the backbone's skips: block 6 at 1/8 (transposed conv), block 12
        # at 1/16; block 18's projection is built but never used
        self.scale_embed = nn.ModuleList(
            [
                nn.ConvTranspose2d(
                    in_channels,
                    dims[2],
                    3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                ),
                nn.Conv2d(in_channels, dims[1], 3, padding=1),
                nn.Conv2d(in_channels, dims[0], 3, padding=1),
            ]
        )
        self.scale_embed[2].requires_grad_(False)
        self.heads = nn.ModuleDict(
            {
                t: nn.Conv2d(channels, out, 1)
                for t, out in self.task_channels.items()
            }
        )

    def init_weights(self):
        super().init_weights()
        if self.init_cfg is not None:
            return
        # the official code's trunc-normal init of the stages' linear
        # layers and of the output convs
        for module in self.invpt.invpt_stages.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        for proj in self.invpt.mt_proj.values():
            trunc_normal_(proj.conv.weight, std=0.02)

    def forward(self, inputs: Sequence[Tensor]) -> Dict[str, TaskMaps]:
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 4:
            raise ValueError(
                'InvPTDecoder takes the four outputs of the ViT (three '
                'intermediate blocks and the last), got '
                f'{type(inputs).__name__} of '
                f'{len(inputs) if isinstance(inputs, (list, tuple)) else 1}:'
                ' set model.backbone.out_indices to four blocks.'
            )
        last = inputs[3]
        x = _resize(last, (last.shape[-2] // 2, last.shape[-1] // 2))
        features, initial = {}, {}
        for task in self.task_names:
            features[task] = self.preliminary_decoder[task](x)
            initial[task] = self.intermediate_head[task](features[task])
        # stage i adds the backbone map of its resolution (none at stage 0)
        skips = [None, self.scale_embed[1](inputs[1])]
        skips.append(self.scale_embed[0](inputs[0]))
        refined = self.invpt(features, initial, skips)
        final = {t: self.heads[t](refined[t]) for t in self.task_names}
        return dict(initial=initial, final=final)
