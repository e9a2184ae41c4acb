"""The plain ViT of InvPT, TaskPrompter and MLoRE, with intermediate outputs.

The three official codes build timm 0.5's ``VisionTransformer`` (patch 16,
class token, learned position embeddings for the training scale, pre-norm
blocks, LayerNorm eps 1e-6, no classifier) and read the tokens of a few
blocks. This backbone is made of timm's own ``PatchEmbed`` and ``Block``
(timm 1.x: the attention runs through ``F.scaled_dot_product_attention``)
under the same attribute names, so its state dict has the official keys
and shapes one to one (``patch_embed.proj``, ``cls_token``, ``pos_embed``,
``blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``)
and timm's ImageNet files load after dropping the classifier and resampling
the position embeddings (:func:`resample_pos_embed`). mmpretrain's
``VisionTransformer`` computes the same function under other key names
(``layers.<i>.ln1``, ``ffn.layers``...), which every conversion would have
to translate; timm's layout is the official one.
"""

from functools import partial
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from timm.layers import PatchEmbed, resample_abs_pos_embed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import Tensor

from ctal_mm.registry import MODELS

from ..activation_checkpoint import checkpointed

# embed_dims, depth, num_heads of the patch-16 ViTs the three codes build
VIT_ARCHS: Dict[str, Tuple[int, int, int]] = {
    'small': (384, 12, 6),
    'base': (768, 12, 12),
    'large': (1024, 24, 16),
}


def resample_pos_embed(
    pos_embed: Tensor,
    grid: Sequence[int],
    old_grid: Optional[Sequence[int]] = None,
) -> Tensor:
    """Position embeddings (class token first) of an ``old_grid`` of
    patches (default: square, as timm's ImageNet files) at ``grid`` (rows,
    columns): bicubic, ``align_corners=False``, no antialiasing, the class
    token kept, as the official codes' loaders resize them."""
    return resample_abs_pos_embed(
        pos_embed,
        new_size=list(grid),
        old_size=None if old_grid is None else list(old_grid),
        num_prefix_tokens=1,
        interpolation='bicubic',
        antialias=False,
    )


@MODELS.register_module()
class PatchViT(BaseModule):
    """ViT with patch embedding, class token and learned position embeddings.

    Returns the patch tokens (class token dropped) after the blocks of
    ``out_indices`` as ``(B, C, H / patch, W / patch)`` maps; the last
    block's output passes the final ``norm`` first (the official codes take
    the earlier ones without it).

    Args:
        arch (str | dict): ``'small'``, ``'base'`` or ``'large'``
            (:data:`VIT_ARCHS`), or ``dict(embed_dims, depth, num_heads)``
            (the tests' reduced ViTs).
        img_size (int | tuple): The training scale (H, W); the position
            embeddings hold one entry per patch of it. Other input sizes are
            served by resampling them (bicubic) in the forward.
        patch_size (int): Patch size.
        out_indices (Sequence[int]): 0-based indices of the blocks whose
            output is returned (InvPT's ``select_list`` [6, 12, 18] and the
            final output are ``(5, 11, 17, 23)`` for ViT-L).
        drop_path_rate (float): Stochastic depth, rising linearly from 0
            over the blocks.
        qkv_bias (bool): Bias of the qkv projection.
        with_cp (bool): Activation checkpointing per block (keep each
            block's input only and recompute it in backward).
        init_cfg (dict, optional): e.g. ``VerifiedPretrained`` with a file
            from ``tools/model_converters/timm_vit2mm.py``.
    """

    def __init__(
        self,
        arch: str = 'large',
        img_size=(448, 576),
        patch_size: int = 16,
        out_indices: Sequence[int] = (5, 11, 17, 23),
        drop_path_rate: float = 0.0,
        qkv_bias: bool = True,
        with_cp: bool = False,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        if isinstance(arch, str) and arch in VIT_ARCHS:
            embed_dims, depth, num_heads = VIT_ARCHS[arch]
        elif isinstance(arch, dict) and set(arch) == {
            'embed_dims',
            'depth',
            'num_heads',
        }:
            embed_dims, depth, num_heads = (
                arch['embed_dims'],
                arch['depth'],
                arch['num_heads'],
            )
        else:
            raise ValueError(
                f'PatchViT: arch={arch!r}; expected one of '
                f'{sorted(VIT_ARCHS)} or dict(embed_dims=..., depth=..., '
                'num_heads=...).'
            )
        img_size = (
            tuple(img_size)
            if not isinstance(img_size, int)
            else (
                img_size,
                img_size,
            )
        )
        bad = [i for i in out_indices if not 0 <= i < depth]
        if bad or not out_indices:
            raise ValueError(
                f'PatchViT: out_indices={tuple(out_indices)} must be block '
                f'indices in [0, {depth - 1}] (arch {arch!r} has {depth}).'
            )
        self.embed_dims = embed_dims
        self.out_indices = tuple(out_indices)
        self.with_cp = with_cp
        self.patch_embed = PatchEmbed(
            img_size=img_size,
            patch_size=patch_size,
            in_chans=3,
            embed_dim=embed_dims,
            strict_img_size=False,
        )
        self.grid_size = self.patch_embed.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.patch_embed.num_patches + 1, embed_dims)
        )
        rates = torch.linspace(0, drop_path_rate, depth, device='cpu').tolist()
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.Sequential(
            *[
                Block(
                    dim=embed_dims,
                    num_heads=num_heads,
                    mlp_ratio=4.0,
                    qkv_bias=qkv_bias,
                    drop_path=rate,
                    norm_layer=norm_layer,
                )
                for rate in rates
            ]
        )
        self.norm = norm_layer(embed_dims)

    def init_weights(self):
        if self.init_cfg is not None:
            super().init_weights()
            return
        # the official codes' (timm's) from-scratch initialisation
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def position_embeddings(self, grid: Tuple[int, int]) -> Tensor:
        """The position embeddings for a ``grid`` of patches."""
        if tuple(grid) == tuple(self.grid_size):
            return self.pos_embed
        return resample_pos_embed(self.pos_embed, grid, self.grid_size)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        B, _, H, W = x.shape
        patch = self.patch_embed.patch_size
        grid = (H // patch[0], W // patch[1])
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(B, -1, -1)
        tokens = torch.cat((cls, tokens), dim=1) + self.position_embeddings(
            grid
        )
        outs = []
        last = len(self.blocks) - 1
        for index, block in enumerate(self.blocks):
            if self.with_cp:
                tokens = checkpointed(block, tokens)
            else:
                tokens = block(tokens)
            if index in self.out_indices:
                out = self.norm(tokens) if index == last else tokens
                outs.append(self.to_map(out[:, 1:], grid))
        return tuple(outs)

    @staticmethod
    def to_map(tokens: Tensor, grid: Tuple[int, int]) -> Tensor:
        """``(B, h*w, C)`` patch tokens -> ``(B, C, h, w)``."""
        B, _, C = tokens.shape
        return tokens.transpose(1, 2).reshape(B, C, grid[0], grid[1])
