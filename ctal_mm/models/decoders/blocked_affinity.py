"""CTAL's fused affinity attention, computed a block of rows at a time.

For one image, with the T tasks' normalised features X_t and values V_t
(C x N each, N = h*w positions), the plain computation is

    A_t = X_t^T X_t                                   T matrices, N x N
    M[p, q] = b_p + sum_{t, k} W[p, t, k] A_t[p, q + k]   3x3 stencil over q
    Z_t = V_t M^T

with ``q + k`` the 3x3 neighbour of q on the h x w grid (zero outside).
Row p of M needs only row p of every A_t, so :class:`BlockedAffinityAttention`
goes through the rows in blocks of P: it holds B x T x P x N of A at a time
instead of B x T x N x N plus M, and writes its own backward (the same
products, recomputing each block's A and M) instead of autograd's, which
would keep every block's A.

The 3x3 fusion is not a grouped convolution here: the features are
zero-padded to (h+2) x (w+2) before the product, so each block of A comes
out padded and every 3x3 neighbour is a fixed offset in the flattened grid;
the stencil and its two gradients are strided multiply-adds on sub-blocks of
rows small enough to stay in cache (the grouped convolution's weight
gradient is the slowest part of the plain step on CPU). Measured speed and
memory against the plain implementation: docs/benchmarks.md.
"""

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# rows per sub-block of the stencil: B x T x 64 x L floats stay in cache
STENCIL_ROWS = 64


class _PaddedGrid:
    """Index arithmetic of the (h+2) x (w+2) zero-padded, flattened grid."""

    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        self.row = w + 2
        self.length = (h + 2) * (w + 2)
        # the flat range covering every interior position (and the ring
        # columns between them, whose values are never used)
        self.lo = self.row + 1
        self.hi = h * self.row + w + 1
        # W[p, t, a, b] reads the input at (y + a - 1, x + b - 1)
        self.offsets: List[int] = [
            (a - 1) * self.row + (b - 1) for a in range(3) for b in range(3)
        ]

    def pad(self, x: Tensor) -> Tensor:
        """... x N -> ... x L, zeros on the ring."""
        lead = x.shape[:-1]
        grid = x.reshape(-1, self.h, self.w)
        return F.pad(grid, (1, 1, 1, 1)).reshape(*lead, self.length)

    def interior(self, x: Tensor) -> Tensor:
        """... x L -> ... x N."""
        lead = x.shape[:-1]
        grid = x.reshape(-1, self.h + 2, self.w + 2)[:, 1:-1, 1:-1]
        return grid.reshape(*lead, self.h * self.w)

    def shifted(self, x: Tensor, offset: int) -> Tensor:
        """View of x's last dim: entry i holds x[lo + i + offset]."""
        return x[..., self.lo + offset : self.hi + offset]

    def span(self, x: Tensor) -> Tensor:
        return x[..., self.lo : self.hi]


def _stencil(
    affinity: Tensor, weight: Tensor, bias: Tensor, grid: _PaddedGrid
) -> Tensor:
    """M (B x P x L, valid in the interior) from padded A (B x T x P x L)."""
    B, T, P, L = affinity.shape
    fused = affinity.new_zeros(B, P, L)
    for s in range(0, P, STENCIL_ROWS):
        e = min(s + STENCIL_ROWS, P)
        out = grid.span(fused[:, s:e])
        out.copy_(bias[s:e, None].expand_as(out))
        for t in range(T):
            rows = affinity[:, t, s:e]
            for k, offset in enumerate(grid.offsets):
                out.addcmul_(
                    grid.shifted(rows, offset), weight[s:e, t, k, None]
                )
    return fused


def _stencil_backward(
    affinity: Tensor,
    weight: Tensor,
    grad_fused: Tensor,
    grid: _PaddedGrid,
) -> Tuple[Tensor, Tensor]:
    """Gradients of :func:`_stencil` for A (B x T x P x L) and W (P x T x 9).

    ``grad_fused`` is zero outside the interior, so values of M on the ring
    columns (never used) get no gradient.
    """
    B, T, P, L = affinity.shape
    grad_affinity = torch.zeros_like(affinity)
    grad_weight = weight.new_empty(P, T, 9)
    for s in range(0, P, STENCIL_ROWS):
        e = min(s + STENCIL_ROWS, P)
        g = grid.span(grad_fused[:, s:e])  # B x p x l
        for t in range(T):
            rows = affinity[:, t, s:e]
            grad_rows = grad_affinity[:, t, s:e]
            for k, offset in enumerate(grid.offsets):
                shifted = grid.shifted(rows, offset)
                # sum over images and positions of dM * A(shifted)
                grad_weight[s:e, t, k] = (g * shifted).sum((0, 2))
                grid.shifted(grad_rows, offset).addcmul_(
                    g, weight[s:e, t, k, None]
                )
    return grad_affinity, grad_weight


class BlockedAffinityAttention(torch.autograd.Function):
    """Z = V M^T (see the module docstring) for all tasks at once.

    Args (of ``apply``):
        normed: B x T x C x N, unit vectors over C.
        values: B x T x C x N.
        weight: N x T x 3 x 3, the fusion conv's weight; bias: N.
        size: (h, w) with h * w = N.
        block_size: rows of M per block.

    Returns:
        B x T x C x N.
    """

    @staticmethod
    def forward(ctx, normed, values, weight, bias, size, block_size):
        dtype = torch.promote_types(normed.dtype, values.dtype)
        with torch.autocast(normed.device.type, enabled=False):
            normed, values = normed.to(dtype), values.to(dtype)
            weight, bias = weight.to(dtype), bias.to(dtype)
            ctx.save_for_backward(normed, values, weight, bias)
            ctx.size, ctx.block_size = tuple(size), block_size
            return _forward(normed, values, weight, bias, size, block_size)

    @staticmethod
    def backward(ctx, grad_out):
        normed, values, weight, bias = ctx.saved_tensors
        with torch.autocast(normed.device.type, enabled=False):
            grads = _backward(
                normed,
                values,
                weight,
                bias,
                grad_out.to(normed.dtype),
                ctx.size,
                ctx.block_size,
            )
        return (*grads, None, None)


# torch.compile runs this eagerly (a graph break): it is written by hand for
# speed already, and tracing its block loops would take minutes.
@torch.compiler.disable
def blocked_affinity_attention(
    normed: Tensor,
    values: Tensor,
    weight: Tensor,
    bias: Tensor,
    size: Tuple[int, int],
    block_size: int,
) -> Tensor:
    """:class:`BlockedAffinityAttention` (see there for the arguments)."""
    return BlockedAffinityAttention.apply(
        normed, values, weight, bias, size, block_size
    )


def _forward(normed, values, weight, bias, size, block_size):
    B, T, C, N = normed.shape
    grid = _PaddedGrid(*size)
    padded = grid.pad(normed)  # B T C L
    flat_values = values.reshape(B, T * C, N)
    weight = weight.reshape(N, T, 9)
    out = values.new_empty(B, T * C, N)
    for start in range(0, N, block_size):
        stop = min(start + block_size, N)
        fused, _ = _fused_block(
            normed, padded, weight, bias, start, stop, grid
        )
        # Z[:, :, rows] = V M_rows^T
        out[..., start:stop] = torch.bmm(flat_values, fused.transpose(1, 2))
    return out.reshape(B, T, C, N)


def _fused_block(normed, padded, weight, bias, start, stop, grid):
    """Rows [start, stop) of M (B x P x N), and that block of the padded
    affinities (B x T x P x L)."""
    affinity = torch.matmul(
        normed[..., start:stop].transpose(-1, -2), padded
    )  # B T P L
    fused = _stencil(affinity, weight[start:stop], bias[start:stop], grid)
    return grid.interior(fused), affinity


def _backward(normed, values, weight, bias, grad_out, size, block_size):
    B, T, C, N = normed.shape
    grid = _PaddedGrid(*size)
    padded = grid.pad(normed)
    flat_values = values.reshape(B, T * C, N)
    flat_grad = grad_out.reshape(B, T * C, N)
    weight9 = weight.reshape(N, T, 9)
    grad_values = torch.zeros_like(flat_values)
    grad_padded = torch.zeros_like(padded)
    grad_normed = torch.zeros_like(normed)
    grad_weight = torch.empty_like(weight9)
    grad_bias = torch.empty_like(bias)
    grad_fused_padded = None
    for start in range(0, N, block_size):
        stop = min(start + block_size, N)
        P = stop - start
        fused, affinity = _fused_block(
            normed, padded, weight9, bias, start, stop, grid
        )
        grad_rows = flat_grad[..., start:stop]  # B x TC x P
        grad_values.baddbmm_(grad_rows, fused)
        grad_fused = torch.bmm(grad_rows.transpose(1, 2), flat_values)
        grad_bias[start:stop] = grad_fused.sum((0, 2))
        if grad_fused_padded is None or grad_fused_padded.shape[1] != P:
            # the ring stays zero: only interior entries are written below
            grad_fused_padded = grad_fused.new_zeros(B, P, grid.length)
        grad_fused_padded.view(B, P, grid.h + 2, grid.w + 2)[
            :, :, 1:-1, 1:-1
        ] = grad_fused.view(B, P, grid.h, grid.w)
        grad_affinity, grad_weight[start:stop] = _stencil_backward(
            affinity, weight9[start:stop], grad_fused_padded, grid
        )
        # A_rows = X_rows^T Xpad: both factors get a gradient
        rows = normed[..., start:stop]  # B T C P
        grad_padded += torch.matmul(rows, grad_affinity)
        grad_normed[..., start:stop] += torch.matmul(
            padded, grad_affinity.transpose(-1, -2)
        )
    grad_normed += grid.interior(grad_padded)
    return (
        grad_normed,
        grad_values.reshape(B, T, C, N),
        grad_weight.reshape_as(weight),
        grad_bias,
    )
