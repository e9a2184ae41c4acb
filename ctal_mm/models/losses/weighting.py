"""Loss-weighting strategies: how the per-task losses become the total.

A strategy gets ``{'<stage>.<task>': raw loss}`` and the task weights of the config and returns
the same keys with weighted losses (plus any extra terms under their own names). The model's
optimiser sees every parameter of the model, strategies included: that is what makes the
uncertainty weights train (the reference keeps them in the criterion, outside the optimiser).
"""

from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from ctal_mm.registry import MODELS


def _task_of(key: str) -> str:
    return key.split('.', 1)[1]


@MODELS.register_module()
class FixedWeighting(nn.Module):
    """w_t * L for every stage of task t (the reference's ``Scalarization``)."""

    def __init__(self, tasks: Sequence[str] = ()):
        super().__init__()

    def forward(
        self, losses: Mapping[str, Tensor], weights: Mapping[str, float]
    ) -> Dict[str, Tensor]:
        return {k: weights[_task_of(k)] * v for k, v in losses.items()}


@MODELS.register_module()
class UncertaintyWeighting(nn.Module):
    """Homoscedastic uncertainty weighting (Kendall et al. 2018).

    One learnable log-variance s_t per task, shared by the task's stages; the
    regulariser is reported as ``'<task>.uncertainty_reg'`` (in the model's
    loss dict ``'<task>.uncertainty_reg.loss'``, so that it is part of the
    total).

    Args:
        tasks: Task names.
        form: ``'kendall'``: exp(-s_t) * w_t * L for every stage, plus s_t / 2
            once per task. ``'reference'``: the CTAL reference's form,
            L / (2 exp(s_t)) + s_t / 2 for every stage (so the regulariser
            counts once per stage); the config's task weights are not applied,
            as in the reference.
        init_log_var: Initial s_t. Default: 0 for ``'kendall'``, -0.5 (the
            reference's) for ``'reference'``.
    """

    FORMS = ('kendall', 'reference')

    def __init__(
        self,
        tasks: Sequence[str],
        form: str = 'kendall',
        init_log_var: Optional[float] = None,
    ):
        super().__init__()
        if form not in self.FORMS:
            raise ValueError(
                f'UncertaintyWeighting: form must be one of {self.FORMS}, '
                f'got {form!r}.'
            )
        if init_log_var is None:
            init_log_var = -0.5 if form == 'reference' else 0.0
        self.tasks = list(tasks)
        self.form = form
        self.log_vars = nn.Parameter(
            torch.full((len(self.tasks),), float(init_log_var))
        )

    def forward(self, losses, weights):
        out = {}
        stages = dict.fromkeys(self.tasks, 0)
        for key, value in losses.items():
            task = _task_of(key)
            s = self.log_vars[self.tasks.index(task)]
            stages[task] += 1
            if self.form == 'reference':
                out[key] = value / (2 * torch.exp(s))
            else:
                out[key] = torch.exp(-s) * weights[task] * value
        for i, task in enumerate(self.tasks):
            count = stages[task] if self.form == 'reference' else 1
            out[f'{task}.uncertainty_reg'] = 0.5 * count * self.log_vars[i]
        return out


@MODELS.register_module()
class UnitWeighting(nn.Module):
    """Every stage of every task with weight 1, whatever the config's weights.

    The CTAL reference trains its single-task baselines (STL) this way: each
    network backpropagates its own unweighted loss.
    """

    def __init__(self, tasks: Sequence[str] = ()):
        super().__init__()

    def forward(
        self, losses: Mapping[str, Tensor], weights: Mapping[str, float]
    ) -> Dict[str, Tensor]:
        return dict(losses)


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
