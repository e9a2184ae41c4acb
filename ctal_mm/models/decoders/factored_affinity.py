"""CTAL's fused affinity attention without any N x N matrix.

For one image, with the T tasks' features X_t normalised over channels and
values V_t (C x N each, N = h*w positions), CTAL computes

    A_s = X_s^T X_s                                      T matrices, N x N
    M[p, q] = b_p + sum_{s, k} W[p, s, k] A_s[p, q + o_k]  3x3 stencil over q
    Z_t = V_t M^T

where ``q + o_k`` is the k-th 3x3 neighbour of q on the h x w grid (zero
outside). Every A_s has rank C, so the products can be taken in another
order. Writing S_k X_s for X_s with its columns moved to the k-th neighbour
(zero-padded), A_s[p, q + o_k] = x_s[p] . (S_k X_s)[q], and

    Z_t[:, p] = b_p V_t 1 + sum_{s, k} G_tsk (W[p, s, k] x_s[p]),
    G_tsk = V_t (S_k X_s)^T                              C x C

So Z needs the 9 T^2 small matrices G and, per neighbour k, one product of
G with the features scaled by the fusion weights: about 36 (TC)^2 N multiply-adds instead of
the 4 N^2 TC of forming A and M, and memory linear in N. It wins when
9 TC < N (NYUv2 at 288x384: 9 * 384 = 3,456 against N = 6,912; at 576x768
N = 27,648); for small N (Swin features, N = 256) the direct computation is
cheaper. The function normalises the features itself and its backward is
written by hand: it keeps only the inputs (the features not normalised, once),
their norms and G.
Measured against the direct computation: docs/benchmarks.md.
"""

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


class PaddedGrid:
    """Index arithmetic of the (h+2) x (w+2) zero-padded, flattened grid.

    In the flattened padded grid every 3x3 neighbour is a fixed offset, so
    "the k-th neighbour of every position" is a slice of the last dimension:
    ``span`` entries from ``lo + offset``. The span covers every interior
    position (and the ring columns between grid rows, which hold zeros),
    rounded up to a multiple of 16 entries: BLAS multiplies 384 x 7,056
    matrices a quarter faster than 384 x 7,054 ones (NYUv2's span). Padded
    tensors carry that many zeros more after the grid.
    """

    ALIGN = 16

    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        row = w + 2
        self.grid_length = (h + 2) * row
        self.lo = row + 1
        covering = h * row - 2  # from the first interior position to the last
        self.span = -(-covering // self.ALIGN) * self.ALIGN
        self.length = self.grid_length + self.span - covering
        # the conv weight W[.., a, b] reads the input at (y + a - 1, x + b - 1)
        self.offsets = [
            (a - 1) * row + (b - 1) for a in range(3) for b in range(3)
        ]

    def pad(self, x: Tensor) -> Tensor:
        """... x N -> ... x length, zeros on the ring and after the grid."""
        lead = x.shape[:-1]
        if torch.onnx.is_in_onnx_export():
            # the same zeros, written without assigning into a view (which
            # the exporter does not translate)
            grid = F.pad(x.reshape(-1, self.h, self.w), (1, 1, 1, 1))
            flat = grid.reshape(*lead, self.grid_length)
            return F.pad(flat, (0, self.length - self.grid_length))
        padded = x.new_zeros(*lead, self.length)
        self._as_grid(padded)[:, 1:-1, 1:-1] = x.reshape(-1, self.h, self.w)
        return padded

    def shifted(self, x: Tensor, offset: int) -> Tensor:
        """View of a padded x's last dim: entry i holds x[lo + i + offset]."""
        return x[..., self.lo + offset : self.lo + offset + self.span]

    def interior_of_span(self, x: Tensor) -> Tensor:
        """... x span, the span of :meth:`shifted` -> ... x N."""
        full = F.pad(x, (self.lo, self.length - self.lo - self.span))
        return self.interior(full)

    def interior(self, x: Tensor) -> Tensor:
        """... x length -> ... x N."""
        lead = x.shape[:-1]
        return self._as_grid(x)[:, 1:-1, 1:-1].reshape(*lead, self.h * self.w)

    def _as_grid(self, x: Tensor) -> Tensor:
        """... x length -> (...) x (h+2) x (w+2), a view."""
        grid = x.reshape(-1, self.length)[:, : self.grid_length]
        return grid.unflatten(1, (self.h + 2, self.w + 2))


class FactoredAffinityAttention(torch.autograd.Function):
    """Z = V M^T for all tasks (see the module docstring).

    Both passes go through the 9 neighbours k one at a time, so besides the
    inputs they hold one B x T C x N tensor of features scaled by the fusion
    weights (Y_k[b, (s, d), p] = W[p, s, k] X_s[d, p]) and its gradient;
    the backward keeps only the inputs, the norms and G. Every product
    accumulates into a contiguous tensor (BLAS would copy a strided one in
    and out).

    Args (of ``apply``):
        features: B x T x C x N, normalised over C here as
            ``F.normalize(features, dim=2)`` does.
        values: B x T x C x N.
        weight: N x T x 3 x 3, the fusion conv's weight; bias: N.
        size: (h, w) with h * w = N.

    Returns:
        B x T x C x N.
    """

    @staticmethod
    def forward(ctx, features, values, weight, bias, size):
        # one dtype for all products (under autocast the features may be
        # float32 and the values bfloat16); autograd casts the gradients back
        dtype = torch.promote_types(features.dtype, values.dtype)
        inputs = (x.to(dtype) for x in (features, values, weight, bias))
        with torch.autocast(features.device.type, enabled=False):
            return _forward(ctx, *inputs, size)

    @staticmethod
    def backward(ctx, grad_out):
        features = ctx.saved_tensors[0]
        with torch.autocast(features.device.type, enabled=False):
            return _backward(ctx, grad_out.to(features.dtype))


# F.normalize's default: x / max(||x||, eps)
NORM_EPS = 1e-12


def _normalised(features, norm):
    return features / norm.clamp_min(NORM_EPS)


def _forward(ctx, features, values, weight, bias, size):
    out, saved = affinity_attention(features, values, weight, bias, size)
    ctx.save_for_backward(*saved)
    ctx.size = tuple(size)
    return out


def affinity_attention(features, values, weight, bias, size):
    """The forward computation, plain torch: ``(out, tensors the backward needs)``.

    Called directly (without the autograd Function) when nothing needs a
    gradient and under ONNX export, which cannot trace a Function.
    """
    B, T, C, N = features.shape
    norm = torch.linalg.vector_norm(features, dim=2, keepdim=True)
    normed = _normalised(features, norm)
    grid = PaddedGrid(*size)
    weight = weight.reshape(N, T, 9)
    padded = grid.pad(normed).reshape(B, T * C, grid.length)
    # the span's ring and tail columns are zero in V: they add nothing to G
    value_span = grid.shifted(grid.pad(values).reshape(B, T * C, -1), 0)
    # G[k, b, (t, c), (s, d)] = sum_q V_t[c, q] X_s[d, q + o_k]
    gram = torch.stack(
        [
            torch.bmm(value_span, grid.shifted(padded, o).transpose(1, 2))
            for o in grid.offsets
        ]
    )
    # the bias adds b_p to every M[p, q]: b_p times the sum of V over q
    out = (values.sum(-1, keepdim=True) * bias).reshape(B, T * C, N)
    for k in range(9):
        out.baddbmm_(gram[k], _scaled_features(normed, weight, k))
    saved = (features, norm, values, weight, bias, gram)
    return out.reshape(B, T, C, N), saved


def _backward(ctx, grad_out):
    features, norm, values, weight, bias, gram = ctx.saved_tensors
    B, T, C, N = features.shape
    normed = _normalised(features, norm)
    grid = PaddedGrid(*ctx.size)
    grad_out = grad_out.reshape(B, T * C, N)
    # the bias term (sum_q V) b
    grad_bias = torch.einsum('bip,bi->p', grad_out, values.sum(-1).flatten(1))
    grad_values = torch.mv(grad_out.reshape(-1, N), bias)
    grad_values = grad_values.reshape(B, T, C, 1).expand(B, T, C, N).clone()
    # out = sum_k G_k Y_k
    grad_gram = torch.empty_like(gram)
    grad_normed = torch.zeros_like(normed)
    grad_weight = torch.empty_like(weight)  # N x T x 9
    for k in range(9):
        torch.bmm(
            grad_out,
            _scaled_features(normed, weight, k).transpose(1, 2),
            out=grad_gram[k],
        )
        grad_scaled = torch.bmm(gram[k].transpose(1, 2), grad_out)
        grad_scaled = grad_scaled.reshape(B, T, C, N)
        # Y_k = W[:, :, k] X: gradients of both factors
        grad_weight[:, :, k] = (grad_scaled * normed).sum((0, 2)).T
        grad_normed.addcmul_(grad_scaled, weight[:, :, k].T.unsqueeze(1))
    # G_k = V_span shift_k(X)^T
    padded = grid.pad(normed).reshape(B, T * C, grid.length)
    value_span = grid.shifted(grid.pad(values).reshape(B, T * C, -1), 0)
    grad_padded = torch.zeros_like(padded)
    grad_value_span = torch.zeros_like(value_span)
    for k, offset in enumerate(grid.offsets):
        grad_value_span.baddbmm_(grad_gram[k], grid.shifted(padded, offset))
        grid.shifted(grad_padded, offset).add_(
            torch.bmm(grad_gram[k].transpose(1, 2), value_span)
        )
    grad_normed += grid.interior(grad_padded).reshape(B, T, C, N)
    grad_values += grid.interior_of_span(grad_value_span).reshape(B, T, C, N)
    # through n = x / max(|x|, eps): (g - n (n . g)) / |x|, or g / eps where
    # the norm is clamped (the clamp passes no gradient to the norm there)
    dot = (normed * grad_normed).sum(2, keepdim=True)
    dot.masked_fill_(norm < NORM_EPS, 0)
    grad_features = grad_normed.addcmul_(normed, dot, value=-1)
    grad_features /= norm.clamp_min(NORM_EPS)
    return (
        grad_features,
        grad_values,
        grad_weight.reshape(N, T, 3, 3),
        grad_bias,
        None,
    )


def _scaled_features(normed: Tensor, weight: Tensor, k: int) -> Tensor:
    """Y_k[b, (s, d), p] = W[p, s, k] X_s[d, p]: B x T C x N."""
    B, T, C, N = normed.shape
    scaled = normed * weight[:, :, k].T.unsqueeze(1)
    return scaled.reshape(B, T * C, N)


# torch.compile runs this eagerly (a graph break): its backward is written by
# hand, and its loops are over a few large products.
@torch.compiler.disable
def factored_affinity_attention(
    features: Tensor,
    values: Tensor,
    weight: Tensor,
    bias: Tensor,
    size: Tuple[int, int],
) -> Tensor:
    """:class:`FactoredAffinityAttention` (see there for the arguments)."""
    needs_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (features, values, weight, bias)
    )
    if not needs_grad or torch.onnx.is_in_onnx_export():
        dtype = torch.promote_types(features.dtype, values.dtype)
        inputs = (x.to(dtype) for x in (features, values, weight, bias))
        with torch.autocast(features.device.type, enabled=False):
            return affinity_attention(*inputs, size)[0]
    return FactoredAffinityAttention.apply(
        features, values, weight, bias, size
    )
