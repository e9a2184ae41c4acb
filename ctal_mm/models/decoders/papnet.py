"""PAP-Net: pattern-affinitive propagation across tasks.

PAP-Net (Zhang et al., CVPR 2019, arXiv 1906.03525) as the CTAL reference
trains it: per task an initial head (two bottleneck blocks to 256 channels
and a 1x1 conv), supervised; per task a 1x1 conv (256 -> 128, with bias)
whose output gives the task's pixel affinity matrix (N x N, N = h*w);
per task a learned softmax mixture of all tasks' affinities, through which
the task's 128-channel features diffuse; a final head per task on the
diffused features. Supervised stages: ``initial`` and ``final``.

The affinity is the cosine similarity of two pixels' feature vectors, each
row divided by its sum so that diffusion averages over pixels. The
reference instead L2-normalises each channel over the pixels and divides
each column by its sum; ``reference_affinity=True`` reproduces that (the
parameters are the same either way).
"""

from typing import Dict, Mapping, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from ctal_mm.registry import MODELS

from .base import TwoStageDecoder


def pap_affinity(features: Tensor, reference: bool = False) -> Tensor:
    """Pixel affinity matrix of a feature map, normalised for diffusion.

    Args:
        features (Tensor): B x C x H x W.
        reference (bool): Reproduce the CTAL reference: L2-normalise each
            channel over the pixels (not each pixel over the channels) and
            divide each column (not row) by its sum. Default: False.

    Returns:
        Tensor: B x N x N with N = H*W; entry (i, j) weighs pixel j's
        features in pixel i's update (rows sum to one unless ``reference``).
    """
    flat = features.flatten(2)  # B x C x N
    flat = F.normalize(flat, dim=2 if reference else 1)
    affinity = torch.bmm(flat.transpose(1, 2), flat)
    return affinity / affinity.sum(dim=1 if reference else 2, keepdim=True)


def diffuse(
    features: Tensor, affinity: Tensor, beta: float, num_iters: int
) -> Tensor:
    """Iterate ``d <- beta * A d + (1 - beta) * x`` from ``d = x``.

    Args:
        features (Tensor): x, B x C x H x W.
        affinity (Tensor): A, B x N x N with N = H*W.
        beta (float): Weight of the propagated features.
        num_iters (int): Number of diffusion steps.

    Returns:
        Tensor: The diffused features, B x C x H x W.
    """
    flat = features.flatten(2)  # B x C x N
    diffused = flat
    for _ in range(num_iters):
        propagated = torch.bmm(diffused, affinity.transpose(1, 2))
        diffused = beta * propagated + (1 - beta) * flat
    return diffused.view_as(features)


class TaskAffinityDiffusion(BaseModule):
    """Cross-task affinity mixing and task-specific diffusion.

    For task t: ``A_t = sum_s softmax(weights[t])_s * affinity(x_s)``, then
    ``x_t`` diffuses through ``A_t``. ``weights[t]`` starts uniform.

    Args:
        task_names (list[str]): Task names.
        beta (float): Diffusion weight.
        num_iters (int): Diffusion steps.
        reference_affinity (bool): See :func:`pap_affinity`.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        task_names,
        beta: float,
        num_iters: int,
        reference_affinity: bool = False,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        self.task_names = list(task_names)
        self.beta = beta
        self.num_iters = num_iters
        self.reference_affinity = reference_affinity
        num_tasks = len(self.task_names)
        self.weights = nn.ParameterDict(
            {
                task: nn.Parameter(torch.full((num_tasks,), 1 / num_tasks))
                for task in self.task_names
            }
        )

    def forward(self, features: Dict[str, Tensor]) -> Dict[str, Tensor]:
        affinities = torch.stack(
            [
                pap_affinity(features[task], self.reference_affinity)
                for task in self.task_names
            ]
        )  # T x B x N x N
        diffused = {}
        for task in self.task_names:
            mix = self.weights[task].softmax(dim=0)
            joint = torch.einsum('t,tbij->bij', mix, affinities)
            diffused[task] = diffuse(
                features[task], joint, self.beta, self.num_iters
            )
        return diffused


@MODELS.register_module()
class PAPNetDecoder(TwoStageDecoder):
    """PAP-Net decoder on one shared feature map.

    Args:
        tasks (dict): The model's task spec, ``{name: dict(channels=...)}``.
        in_channels (int): Channels of the shared feature map.
        channels (int): Width of the initial task features. Default: 256.
        affinity_channels (int): Width of the features whose affinities
            are learned and which diffuse. Default: 128.
        beta (float): Diffusion weight. Default: 0.05 (reference).
        num_iters (int): Diffusion steps. Default: 1 (reference).
        reference_affinity (bool): Reproduce the reference's affinity
            normalisation (over pixels, by column sums), see
            :func:`pap_affinity`. Default: False.
        initial_head (dict): Initial head config, built per task with
            ``in_channels``, ``channels`` and ``out_channels``.
        **kwargs: ``final_head`` (built per task with
            ``in_channels=affinity_channels``), ``with_cp`` and ``init_cfg``
            of :class:`~ctal_mm.models.decoders.base.TwoStageDecoder`.
    """

    def __init__(
        self,
        tasks: Mapping[str, Mapping],
        in_channels: int,
        channels: int = 256,
        affinity_channels: int = 128,
        beta: float = 0.05,
        num_iters: int = 1,
        reference_affinity: bool = False,
        initial_head: dict = dict(type='BottleneckTaskHead'),
        **kwargs,
    ):
        cross_task = dict(
            channels=channels,
            affinity_channels=affinity_channels,
            beta=beta,
            num_iters=num_iters,
            reference_affinity=reference_affinity,
        )
        super().__init__(
            tasks,
            in_channels=in_channels,
            initial_head=dict(initial_head, channels=channels),
            cross_task=cross_task,
            **kwargs,
        )

    def build_cross_task(
        self,
        channels: int,
        affinity_channels: int,
        beta: float,
        num_iters: int,
        reference_affinity: bool,
    ) -> int:
        self.affinity_convs = nn.ModuleDict(
            {
                task: nn.Conv2d(channels, affinity_channels, 1)
                for task in self.task_names
            }
        )
        self.diffusion = TaskAffinityDiffusion(
            self.task_names, beta, num_iters, reference_affinity
        )
        return affinity_channels

    def cross_task(self, features: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Each task's features, reduced to ``affinity_channels``, diffuse."""
        return self.diffusion(
            {
                task: self.affinity_convs[task](task_features)
                for task, task_features in features.items()
            }
        )
