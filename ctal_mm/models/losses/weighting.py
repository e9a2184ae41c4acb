"""Loss-weighting strategies: how the per-task losses become the total.

A strategy gets ``{(stage, task): raw loss}`` and the task weights of the config and returns
the same keys with weighted losses, plus any extra terms (regularisers) under
:class:`~ctal_mm.models.losses.loss_keys.ExtraTerm` keys (``loss_keys.py``). The model's
optimiser sees every parameter of the model, strategies included: that is what makes the
uncertainty weights train (the reference keeps them in the criterion, outside the optimiser).
"""

from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from ctal_mm.registry import MODELS

from .loss_keys import ExtraTerm, LossKey, StageTask


def _task_of(key: StageTask) -> str:
    if not (isinstance(key, tuple) and len(key) == 2):
        raise TypeError(
            f'loss weighting: raw loss key {key!r}; expected (stage, task), '
            "e.g. ('final', 'depth') (the model's raw losses, loss_keys.py)."
        )
    return key[1]


@MODELS.register_module()
class FixedWeighting(nn.Module):
    """w_t * L for every stage of task t (the reference's ``Scalarization``)."""

    def __init__(self, tasks: Sequence[str] = ()):
        super().__init__()

    def forward(
        self, losses: Mapping[StageTask, Tensor], weights: Mapping[str, float]
    ) -> Dict[LossKey, Tensor]:
        return {k: weights[_task_of(k)] * v for k, v in losses.items()}


@MODELS.register_module()
class UncertaintyWeighting(nn.Module):
    """Homoscedastic uncertainty weighting (Kendall et al. 2018).

    One learnable log-variance s_t per task, shared by the task's stages; the
    regulariser is the term ``ExtraTerm('uncertainty_reg', task)`` (logged as
    ``'<task>.uncertainty_reg.loss'``, part of the total).

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
            out[ExtraTerm('uncertainty_reg', task)] = (
                0.5 * count * self.log_vars[i]
            )
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
        self, losses: Mapping[StageTask, Tensor], weights: Mapping[str, float]
    ) -> Dict[LossKey, Tensor]:
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


# ---------------------------------------------------------------- torchjd scalarisations
def _task_totals(losses, weights, tasks):
    """sum over stages of w_t * L per task, as a vector in ``tasks`` order."""
    totals = [None] * len(tasks)
    for key, value in losses.items():
        i = tasks.index(_task_of(key))
        term = weights[_task_of(key)] * value
        totals[i] = term if totals[i] is None else totals[i] + term
    missing = [t for t, v in zip(tasks, totals) if v is None]
    if missing:
        raise KeyError(
            f'loss weighting: no loss for task(s) {missing} among {list(losses)}.'
        )
    return torch.stack(totals)


@MODELS.register_module()
class ScalarizationWeighting(nn.Module):
    """A torchjd scalarisation S(l_1, ..., l_T) of the task losses (torchjd.scalarization).

    l_t is task t's weighted loss (its stages summed). The model's loss terms become
    ``c_t * w_t * L`` with c_t = dS/dl_t at the current losses (not differentiated):
    the same gradient as S for every parameter of the model, and each logged term is the
    task's loss under the method's current weight. A scalariser with its own trainable
    parameters (IMTLL's scales) gets their gradient through the term
    ``ExtraTerm('scalarization.params')`` (value 0; logged as
    ``'scalarization.params.loss'``). Methods: ``'GeometricMean'``, ``'IMTLL'``,
    ``'STCH'`` (``mu=``), ``'Random'`` (random loss weighting), ``'FAMO'`` (see
    :class:`FAMOWeighting`), and torchjd's others by name.

    Args:
        tasks: the model's task names.
        scalarizer: the torchjd scalariser's class name.
        **kwargs: its arguments (``shape`` is filled in with the number of tasks).
    """

    def __init__(self, tasks: Sequence[str], scalarizer: str, **kwargs):
        super().__init__()
        import inspect

        from torchjd import scalarization

        self.tasks = list(tasks)
        cls = getattr(scalarization, scalarizer, None)
        if not (
            isinstance(cls, type) and issubclass(cls, scalarization.Scalarizer)
        ):
            names = [
                n for n in scalarization.__all__ if n not in ('Scalarizer',)
            ]
            raise KeyError(
                f'loss_weighting.scalarizer={scalarizer!r} is not a torchjd '
                f'scalarisation; available: {names}.'
            )
        if 'shape' in inspect.signature(cls.__init__).parameters:
            kwargs.setdefault('shape', len(self.tasks))
        for key in ('weights', 'reference', 'min_losses'):
            if isinstance(kwargs.get(key), (list, tuple)):
                kwargs[key] = torch.tensor(kwargs[key], dtype=torch.float32)
        self.scalarizer = cls(**kwargs)

    def scalarize(self, totals: Tensor) -> Tensor:
        return self.scalarizer(totals)

    def forward(self, losses, weights):
        totals = _task_totals(losses, weights, self.tasks)
        detached = totals.detach().float().requires_grad_()
        with torch.enable_grad():
            value = self.scalarize(detached)
            (coeffs,) = torch.autograd.grad(value, detached, retain_graph=True)
        out = {
            k: coeffs[self.tasks.index(_task_of(k))].to(v.dtype)
            * weights[_task_of(k)]
            * v
            for k, v in losses.items()
        }
        if value.requires_grad and any(
            p.requires_grad for p in self.scalarizer.parameters()
        ):
            out[ExtraTerm('scalarization.params')] = value - value.detach()
        return out


@MODELS.register_module()
class GeometricMeanWeighting(ScalarizationWeighting):
    """The geometric mean of the task losses (torchjd's GeometricMean)."""

    def __init__(self, tasks: Sequence[str]):
        super().__init__(tasks, 'GeometricMean')


@MODELS.register_module()
class IMTLLWeighting(ScalarizationWeighting):
    """IMTL-L (Liu et al. 2021): learned scales, sum exp(s_t) l_t - s_t (torchjd's IMTLL)."""

    def __init__(self, tasks: Sequence[str]):
        super().__init__(tasks, 'IMTLL')


@MODELS.register_module()
class STCHWeighting(ScalarizationWeighting):
    """Smooth Tchebycheff scalarisation (Lin et al. 2024; torchjd's STCH), smoothing ``mu``."""

    def __init__(self, tasks: Sequence[str], mu: float = 1.0, **kwargs):
        super().__init__(tasks, 'STCH', mu=mu, **kwargs)


@MODELS.register_module()
class RandomWeighting(ScalarizationWeighting):
    """Random loss weighting (Lin et al. 2022): softmax of Gaussian weights each step."""

    def __init__(self, tasks: Sequence[str]):
        super().__init__(tasks, 'Random')


@MODELS.register_module()
class FAMOWeighting(ScalarizationWeighting):
    """FAMO (Liu et al. 2023; torchjd's FAMO): balanced loss decrease from loss values only.

    torchjd's FAMO learns its task logits from the change of the losses across an update,
    measured on the same batch after the step; this runs no second forward: each training
    step first updates the logits from the previous step's losses to this step's (the next
    batch's losses stand for the "after" losses; noisier, no extra cost). The logits are
    trained by FAMO's own Adam (``lr``, ``weight_decay``), not by the model's optimiser.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        lr: float = 0.025,
        weight_decay: float = 1e-3,
        min_losses=None,
    ):
        super().__init__(
            tasks,
            'FAMO',
            lr=lr,
            weight_decay=weight_decay,
            min_losses=min_losses,
        )

    def scalarize(self, totals: Tensor) -> Tensor:
        famo = self.scalarizer
        if self.training and famo._prev_losses is not None:
            famo.update(totals.detach())
        return famo(totals)


# ---------------------------------------------------------------- GradNorm
@MODELS.register_module()
class GradNormWeighting(nn.Module):
    """GradNorm (Chen et al. 2018): learned task weights that balance gradient norms.

    Task weights v_t (sum T) scale the task losses. Each training step, G_t = v_t ||grad_W
    l_t|| on one shared parameter W (by default the last weight of the neck, else of the
    backbone), and the weights are trained by the model's optimiser on the term
    ``ExtraTerm('gradnorm')`` (logged as ``'gradnorm.loss'``) = sum_t |G_t - mean(G)
    r_t^alpha|, with r_t the task's loss ratio l_t / l_t(0) relative to the mean ratio
    (the target not differentiated); the task terms use v_t without differentiating it,
    and v is renormalised to sum T before each step. Cost: one backward pass per task
    down to W (through the decoder).

    Args:
        tasks: the model's task names.
        alpha: the restoring force (the paper: 1.5 on NYUv2).
        shared_param: name of W in the model (``model.named_parameters()``), or None.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        alpha: float = 1.5,
        shared_param: str = None,
    ):
        super().__init__()
        self.tasks = list(tasks)
        self.alpha = alpha
        self.shared_param = shared_param
        self.task_weights = nn.Parameter(torch.ones(len(self.tasks)))
        self.register_buffer('initial', torch.zeros(len(self.tasks)))
        self.register_buffer('started', torch.zeros((), dtype=torch.bool))
        self._shared = []  # a list, so that W is not registered twice

    def bind_model(self, model: nn.Module) -> None:
        """Find W in the model that owns this weighting (called by the model)."""
        params = dict(model.named_parameters())
        name = self.shared_param
        if name is None:
            for prefix in ('neck.', 'backbone.'):
                names = [
                    n
                    for n, p in params.items()
                    if n.startswith(prefix) and p.dim() > 1
                ]
                if names:
                    name = names[-1]
                    break
        if name not in params:
            raise KeyError(
                f'GradNormWeighting: shared_param={name!r} is not a parameter of '
                "the model; give one of its names, e.g. 'backbone.<...>.weight'."
            )
        self._shared = [params[name]]

    def forward(self, losses, weights):
        totals = _task_totals(losses, weights, self.tasks)
        T = len(self.tasks)
        with torch.no_grad():
            self.task_weights.clamp_(min=1e-6)
            self.task_weights.mul_(T / self.task_weights.sum())
        v = self.task_weights
        out = {
            k: v[self.tasks.index(_task_of(k))].detach()
            * weights[_task_of(k)]
            * val
            for k, val in losses.items()
        }
        if not (
            self.training and torch.is_grad_enabled() and totals.requires_grad
        ):
            return out
        if not self._shared:
            raise RuntimeError(
                'GradNormWeighting needs the shared parameter W: the model '
                'calls bind_model(model) (MultiTaskEncoderDecoder does).'
            )
        (shared,) = self._shared
        norms = []
        for t in range(T):
            (g,) = torch.autograd.grad(
                totals[t], shared, retain_graph=True, allow_unused=True
            )
            norms.append(
                torch.zeros((), device=totals.device)
                if g is None
                else g.detach().float().norm()
            )
        norms = torch.stack(norms)
        with torch.no_grad():
            if not bool(self.started):
                self.initial.copy_(totals.detach().float())
                self.started.fill_(True)
            ratio = totals.detach().float() / self.initial.clamp_min(1e-12)
            relative = ratio / ratio.mean().clamp_min(1e-12)
        grad_norms = v * norms
        target = (grad_norms.mean() * relative**self.alpha).detach()
        out[ExtraTerm('gradnorm')] = (grad_norms - target).abs().sum()
        return out
