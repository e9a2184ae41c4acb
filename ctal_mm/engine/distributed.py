"""Synchronised BatchNorm for CPU processes (gloo), and the model wrapper that uses it.

torch's SyncBatchNorm (and mmengine's ``sync_bn='torch'``) refuses CPU tensors, so a CPU
data-parallel job normalised each process's share of the batch on its own: two processes with
batch 2 did not compute what one process with batch 4 does. :class:`GlooSyncBatchNorm` reduces
the batch statistics over the processes with plain collectives (any backend, any device) and
back-propagates through them, so N CPU processes train as one process with the global batch.
"""

from typing import Optional

import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from torch import nn

from ctal_mm.registry import MODEL_WRAPPERS


class _AllReduceSum(torch.autograd.Function):
    """all_reduce(SUM) whose gradient is the all_reduce(SUM) of the output's gradients."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def _synced(group) -> bool:
    return (
        dist.is_available()
        and dist.is_initialized()
        and dist.get_world_size(group) > 1
    )


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the whole distributed batch.

    Same arguments and state as ``nn.BatchNorm{1,2,3}d``. In training with more than one
    process the mean and (biased) variance are computed over every process's samples, in
    two reductions (sum and count, then squared deviations: the two-pass formula, as
    accurate as BatchNorm's own); the running statistics get the unbiased variance. Otherwise
    it is plain BatchNorm.

    Args:
        process_group: the group to synchronise over (default: all processes).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group=None,
    ):
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats
        )
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(
                f'GlooSyncBatchNorm expects at least 2D input, got '
                f'{input.dim()}D.'
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        group = self.process_group or dist.group.WORLD
        if not (self.training and _synced(group)):
            return super().forward(x)
        self._check_input_dim(x)
        channels = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        shape = [1, channels] + [1] * (x.dim() - 2)
        # in float64, as torch's CPU BatchNorm accumulates: the backward of a normalisation
        # cancels nearly equal terms, and float32 sums drift from BatchNorm's by percent
        xd = x.double()
        count = xd.new_full((1,), x.numel() // channels)
        sums = _AllReduceSum.apply(torch.cat([xd.sum(dims), count]), group)
        total = sums[channels]
        mean = sums[:channels] / total
        centred = xd - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims), group) / total
        out = (centred * torch.rsqrt(var + self.eps).view(shape)).to(x.dtype)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = (
                    1.0 / float(self.num_batches_tracked)
                    if self.momentum is None
                    else self.momentum
                )
                unbiased = var * total / (total - 1).clamp(min=1)
                stats = self.running_mean.dtype
                self.running_mean.mul_(1 - factor).add_(
                    factor * mean.to(stats)
                )
                self.running_var.mul_(1 - factor).add_(
                    factor * unbiased.to(stats)
                )
        return out


def convert_to_gloo_sync_bn(
    module: nn.Module, process_group=None
) -> nn.Module:
    """Replace every BatchNorm / SyncBatchNorm of ``module`` with :class:`GlooSyncBatchNorm`,
    sharing its parameters and buffers (a model already wrapped keeps its references)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, GlooSyncBatchNorm
    ):
        converted = GlooSyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            process_group,
        )
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        if module.track_running_stats:
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        module.add_module(name, convert_to_gloo_sync_bn(child, process_group))
    return module


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """MMDistributedDataParallel for CPU processes, with synchronised BatchNorm.

    tools/train.py selects it on machines without a GPU when the config asks for synchronised
    BatchNorm (``sync_bn='torch'``, or ``SyncBN`` layers in the model): every BatchNorm
    becomes :class:`GlooSyncBatchNorm` over a process group of its own (so its collectives
    never interleave with DDP's gradient reduction).

    Args:
        module: the model.
        sync_bn: convert the model's BatchNorm layers.
        **kwargs: those of MMDistributedDataParallel (``device_ids`` defaults to None).
    """

    def __init__(self, module: nn.Module, sync_bn: bool = False, **kwargs):
        has_sync = any(
            isinstance(m, nn.SyncBatchNorm) for m in module.modules()
        )
        if sync_bn or has_sync:
            group = dist.new_group(backend='gloo')
            module = convert_to_gloo_sync_bn(module, group)
        kwargs.setdefault('device_ids', None)
        super().__init__(module=module, **kwargs)


# Runner.wrap_model looks a string type up with mmengine's root registry, which finds neither
# ctal_mm's registry (a grandchild) nor 'ctal_mm.'-prefixed names: register there as well.
MMENGINE_MODEL_WRAPPERS.register_module(
    module=CPUDistributedDataParallel, force=True
)
