"""The optimiser wrapper of gradient-level multitask methods (``model.aggregator``)."""

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.dist import get_world_size
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from ctal_mm.models.mtl import (
    JacobianDescent,
    SharedFeatures,
    group_task_losses,
)
from ctal_mm.registry import OPTIM_WRAPPERS

DTYPES = (None, 'bfloat16', 'float16')


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@dataclass
class _Step:
    """What every backward path of one ``update_params`` call works with."""

    descent: JacobianDescent
    module: nn.Module
    shared: List[nn.Parameter]
    other: List[nn.Parameter]
    # times the accumulation factor and the loss scale, in float32 at least
    task_losses: List[torch.Tensor]
    extra: Optional[torch.Tensor]  # the loss terms of no task, likewise
    scale: float  # the loss scale (1.0 unless float16)

    @property
    def params(self) -> List[nn.Parameter]:
        return self.shared + self.other


@OPTIM_WRAPPERS.register_module()
class JacobianOptimWrapper(AmpOptimWrapper):
    """Jacobian descent on the parameters the tasks share, for a model with ``aggregator=``.

    Each step, for every task t (the model's ``'<stage>.<task>.loss'`` terms of that task
    summed, with their configured weights) the gradient of L_t is computed: its part on the
    shared parameters becomes row t of the Jacobian J (T x shared parameter count); its part
    on every other parameter is added to that parameter's gradient (so a task-specific
    parameter gets its own task's gradient, as with the plain sum). Loss terms of no task
    (e.g. an uncertainty regulariser) are back-propagated as usual.

    The model talks to the wrapper through its ``jacobian_descent``
    (:class:`~ctal_mm.models.mtl.JacobianDescent`): the wrapper opens a step before the
    forward (``begin_step``); a model that hands over its shared features z during the
    forward (``record_features(z, modules)``, as :class:`MultiTaskEncoderDecoder` does with
    the output of its backbone and neck) gets the backward pass split at z: one backward
    pass per task through the part after z, to dL_t/dz and the gradients of the
    parameters there; then the T rows dL_t/dz go back through the modules that computed
    z (``parallel_chunk_size`` of them per batched ``torch.vmap`` pass; 1: a loop). The
    Jacobian is the same; a model that records nothing gets one backward pass per task
    through the whole graph. ``jacobian='features'`` aggregates at z instead
    (representation level, not exact, single process): the feature modules get the
    gradient of the combined dL/dz in one backward pass. When the
    optimiser is to step (every ``accumulative_counts`` iterations; J is accumulated over
    them), the model's aggregator turns J into the shared parameters' gradient; then
    gradient clipping and the optimiser step run as in :class:`AmpOptimWrapper`.

    Distributed: the forward runs under DDP's ``no_sync`` (DDP's reducer takes no part), and
    the wrapper averages the gradients itself, once per optimiser step: J (T vectors) before
    aggregating, so every process aggregates the same Jacobian (that of the global batch,
    with equal local batches), and the other parameters' gradients in one flat all-reduce.
    N processes compute what one process computes on the union batch.

    Mixed precision: ``dtype='bfloat16'`` runs the forward under autocast;
    ``dtype='float16'`` adds dynamic loss scaling with ``torch.amp.GradScaler`` (on CPU or
    GPU; the step, clipping and checkpointing of the scaler are mmengine's
    :class:`AmpOptimWrapper`'s): the task losses are scaled before each backward, J is
    unscaled before it is aggregated, and a step whose J (or another gradient) holds an
    inf/NaN is skipped by the scaler, which halves the scale; such steps are counted
    (``skipped_steps``).

    With ``model.aggregator`` + ``gramian=True`` (single process), torchjd's autogram
    engine gives the Gramian J J^T of the shared parameters without J, the aggregator's
    weighting gives the weights w, and the shared parameters get the gradient of
    sum_t w_t L_t.

    Args:
        dtype: None (float32), ``'bfloat16'`` or ``'float16'``.
        loss_scale: float16 only: ``'dynamic'`` or a dict of ``GradScaler`` arguments
            (``init_scale``, ``growth_interval``, ...).
        **kwargs: the arguments of :class:`OptimWrapper` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(
        self, dtype: Optional[str] = None, loss_scale='dynamic', **kwargs
    ):
        # not AmpOptimWrapper.__init__: it requires a GPU and builds a CUDA
        # scaler; this wrapper runs float16 on the CPU too
        OptimWrapper.__init__(self, **kwargs)
        if dtype not in DTYPES:
            raise ValueError(
                f'JacobianOptimWrapper: dtype must be one of {DTYPES}, got {dtype!r}.'
            )
        if loss_scale != 'dynamic' and not isinstance(loss_scale, dict):
            raise TypeError(
                "optim_wrapper.loss_scale must be 'dynamic' or a dict of "
                f'torch.amp.GradScaler arguments, got {loss_scale!r}.'
            )
        self.cast_dtype = getattr(torch, dtype) if dtype else None
        self.loss_scale = loss_scale
        # a disabled scaler (no float16) scales by 1 and steps as the
        # optimizer does, so every dtype takes the same code path
        self.loss_scaler = torch.amp.GradScaler(
            self._param_device().type,
            enabled=dtype == 'float16',
            **({} if loss_scale == 'dynamic' else loss_scale),
        )
        self._scale_update_param = None  # dynamic scaling (AmpOptimWrapper)
        self.skipped_steps = 0
        self._captured: Optional[dict] = None
        self._module: Optional[nn.Module] = None
        self._distributed = False
        self._jacobian: Optional[torch.Tensor] = None

    def _param_device(self) -> torch.device:
        for group in self.optimizer.param_groups:
            for p in group['params']:
                return p.device
        return torch.device('cpu')

    # ------------------------------------------------------------ forward
    @contextmanager
    def optim_context(self, model: nn.Module):
        module = model.module if is_model_wrapper(model) else model
        descent = getattr(module, 'jacobian_descent', None)
        if descent is None:
            raise TypeError(
                'JacobianOptimWrapper needs a model with an aggregator '
                "(model.aggregator=dict(type='UPGrad'), say); "
                f'{type(module).__name__} has none. Use the plain OptimWrapper '
                'for loss-level weighting.'
            )
        self._module = module
        self._distributed = get_world_size() > 1
        if descent.jacobian == 'features' and self._distributed:
            raise RuntimeError(
                "model.aggregator.jacobian='features' is single-process: each process "
                "would aggregate its own samples' feature Jacobian. Use jacobian="
                "'parameters' (the default, exact under DDP)."
            )
        if descent.gramian:
            if self._distributed:
                raise RuntimeError(
                    'model.aggregator gramian=True is single-process: the Gramian of '
                    "the global Jacobian is not the sum of the processes' Gramians. "
                    'Set gramian=False for distributed training.'
                )
            descent.gramian_engine(module)  # hooks the modules before forward
        self._captured = None

        def capture(mod, args, kwargs, output):
            if kwargs.get('mode') == 'loss' and isinstance(output, dict):
                self._captured = output

        with ExitStack() as stack:
            handle = module.register_forward_hook(capture, with_kwargs=True)
            stack.callback(handle.remove)
            if hasattr(model, 'no_sync'):
                # the gradients are reduced here (J before aggregating), not by DDP
                stack.enter_context(model.no_sync())
            if self.cast_dtype is not None:
                stack.enter_context(
                    # torch's own: mmengine's refuses float16 on CPU
                    torch.autocast(
                        device_type=self._param_device().type,
                        dtype=self.cast_dtype,
                    )
                )
            descent.begin_step()
            yield

    # ------------------------------------------------------------ backward
    def _scaled(self, loss: torch.Tensor, factor: float) -> torch.Tensor:
        # in float32 at least: a float16 loss times the loss scale overflows
        return self.loss_scaler.scale(_at_least_float32(loss) * factor)

    def update_params(
        self,
        loss: torch.Tensor,
        step_kwargs: Optional[Dict] = None,
        zero_kwargs: Optional[Dict] = None,
    ) -> None:
        module, losses = self._module, self._captured
        self._captured = None
        if module is None or losses is None:
            raise RuntimeError(
                'JacobianOptimWrapper.update_params: no loss dict was captured; '
                "the model's forward(mode='loss') must run inside "
                'optim_wrapper.optim_context(model) (as train_step does).'
            )
        descent = module.jacobian_descent
        features = descent.end_step()
        shared, other = descent.split_parameters(module)
        task_losses, extra = group_task_losses(losses, descent.tasks)
        if extra is not None and not extra.requires_grad:
            extra = None  # constant terms: nothing to back-propagate
        # the accumulation factor (1 / accumulative_counts)
        factor = float(self.scale_loss(torch.ones(())))
        step = _Step(
            descent,
            module,
            shared,
            other,
            [self._scaled(t, factor) for t in task_losses],
            None if extra is None else self._scaled(extra, factor),
            self.loss_scaler.get_scale(),
        )
        # the Gramian split at z covers the shared modules before z only
        if features is not None and (
            not descent.gramian
            or all(id(p) in features.parameter_ids for p in shared)
        ):
            self._split_backward(step, features)
        elif descent.gramian:
            self._gramian_backward(step)
        elif descent.jacobian == 'features':
            raise RuntimeError(
                "model.aggregator.jacobian='features': the model recorded no "
                'shared features (jacobian_descent.record_features) during its '
                'forward.'
            )
        else:
            self._jacobian_backward(step)
        self._inner_count += 1
        if self.should_update():
            self._aggregate(step)
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    @staticmethod
    def _add_grad(params, grads) -> None:
        for p, g in zip(params, grads):
            if g is None:
                continue
            if p.grad is None:
                p.grad = g.detach().clone()
            else:
                p.grad.add_(g)

    def _backward_extra(self, step: _Step) -> None:
        if step.extra is not None:
            params = step.params
            self._add_grad(
                params,
                torch.autograd.grad(step.extra, params, allow_unused=True),
            )

    def _accumulate_jacobian(self, jacobian: torch.Tensor) -> None:
        if self._jacobian is None:
            self._jacobian = jacobian
        else:
            self._jacobian += jacobian

    @staticmethod
    def _aggregated(descent, rows: torch.Tensor, scale: float) -> torch.Tensor:
        """The aggregation of the (unscaled) rows, scaled back; their plain sum when
        they hold an inf/NaN, which GradScaler then sees and skips the step for."""
        rows = _at_least_float32(rows) / scale
        if torch.isfinite(rows).all():
            return descent.aggregator(rows) * scale
        return rows.sum(0) * scale

    @staticmethod
    def _gramian_weights(descent, gramian: torch.Tensor, scale: float):
        """The weighting of the (unscaled) Gramian; NaN weights when it holds an
        inf/NaN, which GradScaler then sees in the gradients and skips the step for."""
        gramian = gramian / (scale * scale)
        if torch.isfinite(gramian).all():
            return descent.weighting(_at_least_float32(gramian))
        return torch.full_like(gramian[0], float('nan'))

    def _take_rows(self, params, per_task, shared_ids, rows) -> None:
        """Per-task gradients (T, *param.shape): a shared parameter's become its
        Jacobian rows (``rows[id(p)]``), any other parameter gets their sum."""
        for p, g in zip(params, per_task):
            if id(p) in shared_ids:
                rows[id(p)] = g.reshape(g.shape[0], -1)
            else:
                self._add_grad([p], [g.sum(0)])

    def _jacobian_backward(self, step: _Step) -> None:
        shared, other, params = step.shared, step.other, step.params
        rows = []
        last = len(step.task_losses) - 1
        for t, task_loss in enumerate(step.task_losses):
            grads = torch.autograd.grad(
                task_loss,
                params,
                retain_graph=step.extra is not None or t < last,
                allow_unused=True,
            )
            rows.append(
                torch.cat(
                    [
                        (g if g is not None else torch.zeros_like(p)).reshape(
                            -1
                        )
                        for p, g in zip(shared, grads[: len(shared)])
                    ]
                )
            )
            self._add_grad(other, grads[len(shared) :])
        self._backward_extra(step)
        self._accumulate_jacobian(torch.stack(rows))

    @staticmethod
    def _per_task_grads(task_losses, inputs):
        """Stage 1 of the split backward: ``dL_t/d input`` for every task t, as a tuple
        of (T, *input.shape) tensors (zeros where L_t does not reach an input).

        One backward pass per task from L_t itself, not from one-hot rows over the
        stacked losses: a pass then walks only the part of the graph L_t depends on (not
        the other tasks' heads and losses).
        A loop, not torch.vmap: CTAL's factored affinity has a hand-written backward
        (in-place and out= ops) that vmap cannot batch."""
        rows = []
        for task_loss in task_losses:
            grads = torch.autograd.grad(
                task_loss, inputs, retain_graph=True, allow_unused=True
            )
            rows.append(
                [
                    torch.zeros_like(x) if g is None else g
                    for x, g in zip(inputs, grads)
                ]
            )
        return tuple(torch.stack(gs) for gs in zip(*rows))

    @staticmethod
    def _batched_vjps(outputs, inputs, grad_outputs, chunk):
        """The T vector-Jacobian products of ``outputs`` w.r.t. ``inputs``, one per row
        of ``grad_outputs`` (each (T, *output.shape)): a tuple of (T, *input.shape)
        tensors. ``chunk`` rows per batched backward pass (torch.vmap, as torchjd's
        autojac), all at once for None, a plain loop for 1."""

        def vjp(*rows):
            return torch.autograd.grad(
                outputs,
                inputs,
                grad_outputs=rows,
                retain_graph=True,
                materialize_grads=True,
            )

        if chunk == 1:
            count = grad_outputs[0].shape[0]
            per_row = [
                vjp(*(g[t] for g in grad_outputs)) for t in range(count)
            ]
            return tuple(torch.stack(gs) for gs in zip(*per_row))
        return torch.vmap(vjp, chunk_size=chunk)(*grad_outputs)

    def _split_backward(self, step: _Step, features: SharedFeatures) -> None:
        """The backward pass split at the shared features z (what the feature modules
        output): stage 1 gives, for every task, dL_t/dz and the gradients of the
        parameters after z (T VJPs through the decoder only, batched); stage 2 takes
        the T rows dL_t/dz back through the feature modules in one batched backward.
        By the chain rule, row t of stage 2 is dL_t/dθ for every θ before z: the same
        Jacobian as one backward pass per task through the whole model. After stage 1,
        ``jacobian='features'`` aggregates at z instead (:meth:`_aggregate_features`),
        and ``gramian=True`` takes the Gramian through z (:meth:`_gramian_at_features`)."""
        descent, feats = step.descent, features.tensors
        before_ids = features.parameter_ids
        shared_ids = {id(p) for p in step.shared}
        after = [p for p in step.params if id(p) not in before_ids]
        before = [p for p in step.params if id(p) in before_ids]
        grads = self._per_task_grads(step.task_losses, feats + after)
        feat_rows = grads[: len(feats)]
        rows = {}  # id(shared parameter) -> its (T, numel) rows
        self._take_rows(after, grads[len(feats) :], shared_ids, rows)
        if descent.gramian:  # every shared parameter is before z here
            self._gramian_at_features(step, feats, feat_rows, before)
        elif descent.jacobian == 'features':
            self._aggregate_features(step, feats, feat_rows, before, rows)
        else:
            before_rows = self._batched_vjps(
                feats, before, feat_rows, descent.parallel_chunk_size
            )
            self._take_rows(before, before_rows, shared_ids, rows)
            self._accumulate_jacobian(
                torch.cat([rows[id(p)] for p in step.shared], dim=1)
            )
        self._backward_extra(step)

    def _aggregate_features(self, step, feats, feat_rows, before, rows):
        """Representation level: aggregate [dL/dz | dL/dθ_shared-after-z] at once; the
        z part goes back through the feature modules in one plain backward pass."""
        after_shared = [p for p in step.shared if id(p) in rows]
        count = feat_rows[0].shape[0]
        combined = self._aggregated(
            step.descent,
            torch.cat(
                [g.reshape(count, -1) for g in feat_rows]
                + [rows[id(p)] for p in after_shared],
                dim=1,
            ),
            step.scale,
        )
        pieces, offset = [], 0
        for f in list(feats) + after_shared:
            pieces.append(combined[offset : offset + f.numel()].view_as(f))
            offset += f.numel()
        feat_grads = [g.to(f.dtype) for g, f in zip(pieces, feats)]
        self._add_grad(
            after_shared,
            [
                g.to(p.dtype)
                for g, p in zip(pieces[len(feats) :], after_shared)
            ],
        )
        self._add_grad(
            before,
            torch.autograd.grad(
                feats,
                before,
                grad_outputs=feat_grads,
                retain_graph=True,
                allow_unused=True,
            ),
        )

    def _gramian_at_features(self, step, feats, feat_rows, before):
        """The Gramian path after stage 1: torchjd's engine takes the Gramian of the
        Jacobian of the T scalars <g_t, z> (g_t = dL_t/dz, held constant) over the shared
        modules. By the chain rule that Jacobian is the shared parameters' Jacobian of
        the losses, so the Gramian is the one over the whole graph, while the engine's
        batched backward walks only the modules before z (no custom backward of the
        decoder meets torch.vmap). The shared parameters then get the gradient of
        sum_t w_t L_t, the other feature-module parameters the plain sum."""
        count = feat_rows[0].shape[0]
        projections = torch.stack(
            [
                sum(
                    (row[t].detach() * f).sum()
                    for row, f in zip(feat_rows, feats)
                )
                for t in range(count)
            ]
        )
        engine = step.descent.gramian_engine(step.module)
        weights = self._gramian_weights(
            step.descent, engine.compute_gramian(projections), step.scale
        ).to(feat_rows[0].dtype)
        shared_ids = {id(p) for p in step.shared}
        for group, row_weights in (
            ([p for p in before if id(p) in shared_ids], weights),
            ([p for p in before if id(p) not in shared_ids], None),
        ):
            if not group:
                continue
            self._add_grad(
                group,
                torch.autograd.grad(
                    feats,
                    group,
                    grad_outputs=[
                        row.sum(0)
                        if row_weights is None
                        else torch.tensordot(row_weights, row, dims=1)
                        for row in feat_rows
                    ],
                    retain_graph=True,
                    allow_unused=True,
                ),
            )

    def _gramian_backward(self, step: _Step) -> None:
        shared, extra = step.shared, step.extra
        engine = step.descent.gramian_engine(step.module)
        vector = torch.stack(step.task_losses)
        weights = self._gramian_weights(
            step.descent, engine.compute_gramian(vector), step.scale
        )
        self._add_grad(
            shared,
            torch.autograd.grad(
                vector,
                shared,
                grad_outputs=weights.to(vector.dtype),
                retain_graph=True,
                allow_unused=True,
            ),
        )
        params = step.other if extra is None else step.params
        self._add_grad(
            params,
            torch.autograd.grad(
                vector.sum() + (extra if extra is not None else 0),
                params,
                allow_unused=True,
            ),
        )

    # ------------------------------------------------------------ aggregate
    def _reduce_other(self, other: List[nn.Parameter]) -> None:
        if not other:
            return
        present = torch.tensor(
            [p.grad is not None for p in other],
            dtype=torch.float32,
            device=other[0].device,
        )
        dist.all_reduce(present, op=dist.ReduceOp.MAX)
        flat = torch.cat(
            [
                (
                    p.grad if p.grad is not None else torch.zeros_like(p)
                ).reshape(-1)
                for p in other
            ]
        )
        dist.all_reduce(flat)
        flat /= get_world_size()
        offset = 0
        for p, has in zip(other, present.tolist()):
            n = p.numel()
            if has:
                p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def _aggregate(self, step: _Step) -> None:
        if self._distributed:
            self._reduce_other(step.other)
        jacobian, self._jacobian = self._jacobian, None
        if jacobian is None:  # gramian / features path: the gradients are set
            return
        if self._distributed:
            dist.all_reduce(jacobian)
            jacobian /= get_world_size()
        combined = self._aggregated(step.descent, jacobian, step.scale)
        offset = 0
        grads = []
        for p in step.shared:
            n = p.numel()
            grads.append(combined[offset : offset + n].view_as(p).to(p.dtype))
            offset += n
        self._add_grad(step.shared, grads)

    # ------------------------------------------------------------ step
    def step(self, **kwargs) -> None:
        scale = self.loss_scaler.get_scale()
        super().step(
            **kwargs
        )  # AmpOptimWrapper's: unscale, clip, step, update
        if self.loss_scaler.get_scale() < scale:  # an overflow backed it off
            self.skipped_steps += 1

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        raise RuntimeError(
            'JacobianOptimWrapper computes the gradients in update_params '
            '(per-task backward passes); call update_params(loss), not backward().'
        )

    def state_dict(self) -> dict:
        state = super().state_dict()
        if not self.loss_scaler.is_enabled():
            del state['loss_scaler']  # as before: only float16 runs have one
        state['skipped_steps'] = self.skipped_steps
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        self.skipped_steps = state_dict.pop('skipped_steps', 0)
        if not self.loss_scaler.is_enabled():
            state_dict.pop('loss_scaler', None)  # a float16 run's, unused here
        super().load_state_dict(state_dict)
