"""Loss-weighting strategies: how the per-task losses become the total.

A strategy gets ``{'<stage>.<task>': raw loss}`` and the task weights of the config and returns
the same keys with weighted losses (plus any extra terms under their own names). The model's
optimiser sees every parameter of the model, strategies included: that is what makes the
uncertainty weights train (the reference keeps them in the criterion, outside the optimiser).
"""

from typing import Dict, Mapping, Sequence

import torch
from torch import Tensor, nn

from ctal_mm.registry import MODELS


def _task_of(key: str) -> str:
    return key.split('.', 1)[1]


@MODELS.register_module()
class FixedWeighting(nn.Module):
    """w_t * L for every stage of task t (the reference's weighting)."""

    def __init__(self, tasks: Sequence[str] = ()):
        super().__init__()

    def forward(
        self, losses: Mapping[str, Tensor], weights: Mapping[str, float]
    ) -> Dict[str, Tensor]:
        return {k: weights[_task_of(k)] * v for k, v in losses.items()}


@MODELS.register_module()
class UncertaintyWeighting(nn.Module):
    """Homoscedastic uncertainty (Kendall et al. 2018): exp(-s_t) * w_t * L + s_t / 2.

    One learnable log-variance s_t per task, shared by the task's stages; the regulariser is
    reported as ``'<task>.uncertainty_reg'`` (in the model's loss dict
    ``'<task>.uncertainty_reg.loss'``, so that it is part of the total).
    """

    def __init__(self, tasks: Sequence[str]):
        super().__init__()
        self.tasks = list(tasks)
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def forward(self, losses, weights):
        out = {}
        for key, value in losses.items():
            i = self.tasks.index(_task_of(key))
            out[key] = (
                torch.exp(-self.log_vars[i]) * weights[_task_of(key)] * value
            )
        for i, task in enumerate(self.tasks):
            out[f'{task}.uncertainty_reg'] = 0.5 * self.log_vars[i]
        return out


@MODELS.register_module()
class DWAWeighting(nn.Module):
    """Dynamic Weight Average (Liu et al., MTAN 2019).

    w_t = T * softmax_t(r_t / temperature), r_t = mean loss of task t over the last window /
    over the window before; windows of ``window`` training iterations (an epoch in the paper).
    Until two windows have passed the weights are 1.
    """

    def __init__(
        self, tasks: Sequence[str], temperature: float = 2.0, window: int = 100
    ):
        super().__init__()
        self.tasks = list(tasks)
        self.temperature = temperature
        self.window = window
        T = len(self.tasks)
        self.register_buffer('running', torch.zeros(T))
        self.register_buffer('count', torch.zeros((), dtype=torch.long))
        self.register_buffer(
            'history', torch.zeros(2, T)
        )  # previous, before previous
        self.register_buffer('filled', torch.zeros((), dtype=torch.long))

    def dwa_weights(self) -> Tensor:
        T = len(self.tasks)
        if self.filled < 2:
            return torch.ones(T, device=self.running.device)
        ratio = self.history[0] / self.history[1].clamp_min(1e-12)
        return T * torch.softmax(ratio / self.temperature, dim=0)

    def forward(self, losses, weights):
        dwa = self.dwa_weights()
        if self.training:
            with torch.no_grad():
                for key, value in losses.items():
                    self.running[self.tasks.index(_task_of(key))] += (
                        value.detach()
                    )
                self.count += 1
                if self.count >= self.window:
                    self.history[1] = self.history[0]
                    self.history[0] = self.running / self.count
                    self.filled += 1
                    self.running.zero_()
                    self.count.zero_()
        return {
            k: dwa[self.tasks.index(_task_of(k))] * weights[_task_of(k)] * v
            for k, v in losses.items()
        }
