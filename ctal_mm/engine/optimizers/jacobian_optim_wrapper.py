"""The optimiser wrapper of gradient-level multitask methods (``model.aggregator``)."""

from contextlib import ExitStack, contextmanager
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper

from ctal_mm.models.mtl import group_task_losses
from ctal_mm.registry import OPTIM_WRAPPERS

DTYPES = (None, 'bfloat16', 'float16')


def _world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@OPTIM_WRAPPERS.register_module()
class JacobianOptimWrapper(OptimWrapper):
    """Jacobian descent on the parameters the tasks share, for a model with ``aggregator=``.

    Each step, for every task t (the model's ``'<stage>.<task>.loss'`` terms of that task
    summed, with their configured weights) the gradient of L_t is computed: its part on the
    shared parameters becomes row t of the Jacobian J (T x shared parameter count); its part
    on every other parameter is added to that parameter's gradient (so a task-specific
    parameter gets its own task's gradient, as with the plain sum). Loss terms of no task
    (e.g. an uncertainty regulariser) are back-propagated as usual.

    When the model records its shared features z during the forward
    (``model._jacobian_features``, the output of ``jacobian_descent.feature_modules``, as
    :class:`MultiTaskEncoderDecoder` does), the backward pass is split at z: one backward
    pass per task through the part after z, to dL_t/dz and the gradients of the
    parameters there; then the T rows dL_t/dz go back through the feature modules
    (``parallel_chunk_size`` of them per batched ``torch.vmap`` pass; 1: a loop). The
    Jacobian is the same; a model that records nothing gets one backward pass per task
    through the whole graph. ``jacobian='features'`` aggregates at z instead
    (representation level, not exact, single process): the feature modules get the
    gradient of the combined dL/dz in one backward pass. When the
    optimiser is to step (every ``accumulative_counts`` iterations; J is accumulated over
    them), the model's aggregator turns J into the shared parameters' gradient; then
    gradient clipping and the optimiser step run as in :class:`OptimWrapper`.

    Distributed: the forward runs under DDP's ``no_sync`` (DDP's reducer takes no part), and
    the wrapper averages the gradients itself, once per optimiser step: J (T vectors) before
    aggregating, so every process aggregates the same Jacobian (that of the global batch,
    with equal local batches), and the other parameters' gradients in one flat all-reduce.
    N processes compute what one process computes on the union batch.

    Mixed precision: ``dtype='bfloat16'`` runs the forward under autocast;
    ``dtype='float16'`` adds dynamic loss scaling (``torch.amp.GradScaler``, on CPU or
    GPU): the task losses are scaled before each backward, J is unscaled before it is
    aggregated, and a step whose J (or another gradient) holds an inf/NaN is skipped, the
    scale backed off and the skip counted (``skipped_steps``), as GradScaler does.

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
        super().__init__(**kwargs)
        if dtype not in DTYPES:
            raise ValueError(
                f'JacobianOptimWrapper: dtype must be one of {DTYPES}, got {dtype!r}.'
            )
        self.cast_dtype = getattr(torch, dtype) if dtype else None
        self.loss_scale = loss_scale
        self.loss_scaler = None
        if dtype == 'float16':
            scaler_args = {} if loss_scale == 'dynamic' else dict(loss_scale)
            device = self._param_device()
            self.loss_scaler = torch.amp.GradScaler(device.type, **scaler_args)
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
        self._distributed = _world_size() > 1
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
            module._jacobian_step_pending = True
            yield

    # ------------------------------------------------------------ backward
    def _scale(self) -> float:
        if self.loss_scaler is None:
            return 1.0
        # scale() (not get_scale) also sets up the scaler's state on first use
        one = torch.ones((), device=self._param_device())
        return float(self.loss_scaler.scale(one))

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
        module._jacobian_step_pending = False
        features = getattr(module, '_jacobian_features', None)
        module._jacobian_features = None
        descent = module.jacobian_descent
        shared, other = descent.split_parameters(module)
        task_losses, extra = group_task_losses(losses, descent.tasks)
        # in float32 at least: a float16 loss times the loss scale overflows
        task_losses = [_at_least_float32(t) for t in task_losses]
        if extra is not None and not extra.requires_grad:
            extra = None  # constant terms: nothing to back-propagate
        extra = None if extra is None else _at_least_float32(extra)
        # accumulation factor (1 / accumulative_counts) and loss scale
        factor = float(self.scale_loss(torch.ones(())))
        scale = self._scale()
        split = features is not None
        if split:
            before_ids = descent.feature_parameter_ids(module)
            # the Gramian split at z covers the shared modules before z only
            split = not descent.gramian or all(
                id(p) in before_ids for p in shared
            )
        if split:
            self._split_backward(
                descent,
                module,
                features,
                before_ids,
                shared,
                other,
                task_losses,
                extra,
                factor * scale,
                scale,
            )
        elif descent.gramian:
            self._gramian_backward(
                descent,
                module,
                shared,
                other,
                task_losses,
                extra,
                factor * scale,
            )
        else:
            if descent.jacobian == 'features':
                raise RuntimeError(
                    "model.aggregator.jacobian='features': the model recorded no "
                    'shared features (_jacobian_features) during its forward.'
                )
            self._jacobian_backward(
                shared, other, task_losses, extra, factor * scale
            )
        self._inner_count += 1
        if self.should_update():
            self._aggregate(descent, shared, other, scale)
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

    def _jacobian_backward(self, shared, other, task_losses, extra, mult):
        params = shared + other
        n_shared = len(shared)
        rows = []
        last = len(task_losses) - 1
        for t, task_loss in enumerate(task_losses):
            grads = torch.autograd.grad(
                task_loss * mult,
                params,
                retain_graph=extra is not None or t < last,
                allow_unused=True,
            )
            rows.append(
                torch.cat(
                    [
                        (g if g is not None else torch.zeros_like(p)).reshape(
                            -1
                        )
                        for p, g in zip(shared, grads[:n_shared])
                    ]
                )
            )
            self._add_grad(other, grads[n_shared:])
        if extra is not None:
            grads = torch.autograd.grad(
                extra * mult, params, allow_unused=True
            )
            self._add_grad(params, grads)
        jacobian = torch.stack(rows)
        if self._jacobian is None:
            self._jacobian = jacobian
        else:
            self._jacobian += jacobian

    @staticmethod
    def _per_task_grads(task_losses, inputs, mult):
        """Stage 1 of the split backward: ``d(mult * L_t)/d input`` for every task t, as
        a tuple of (T, *input.shape) tensors (zeros where L_t does not reach an input).

        One backward pass per task from L_t itself, not from one-hot rows over the
        stacked losses: a pass then walks only the part of the graph L_t depends on (not
        the other tasks' heads and losses).
        A loop, not torch.vmap: CTAL's factored affinity has a hand-written backward
        (in-place and out= ops) that vmap cannot batch."""
        rows = []
        for task_loss in task_losses:
            grads = torch.autograd.grad(
                task_loss * mult, inputs, retain_graph=True, allow_unused=True
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

    def _split_backward(
        self,
        descent,
        module,
        features,
        before_ids,
        shared,
        other,
        task_losses,
        extra,
        mult,
        scale,
    ):
        """The backward pass split at the shared features z (what the feature modules
        output): stage 1 gives, for every task, dL_t/dz and the gradients of the
        parameters after z (T VJPs through the decoder only, batched); stage 2 takes
        the T rows dL_t/dz back through the feature modules in one batched backward.
        By the chain rule, row t of stage 2 is dL_t/dθ for every θ before z: the same
        Jacobian as one backward pass per task through the whole model (``before_ids``:
        the ids of the feature modules' parameters). After stage 1,
        ``jacobian='features'`` aggregates at z instead (:meth:`_aggregate_features`),
        and ``gramian=True`` takes the Gramian through z (:meth:`_gramian_at_features`)."""
        feats = [features] if torch.is_tensor(features) else list(features)
        if not feats or not all(f.requires_grad for f in feats):
            raise RuntimeError(
                'JacobianOptimWrapper: the recorded shared features '
                '(_jacobian_features) must be tensors that require grad.'
            )
        shared_ids = {id(p) for p in shared}
        params = shared + other
        after = [p for p in params if id(p) not in before_ids]
        before = [p for p in params if id(p) in before_ids]
        grads = self._per_task_grads(task_losses, feats + after, mult)
        feat_rows, after_rows = grads[: len(feats)], grads[len(feats) :]
        rows = {}  # id(shared parameter) -> its (T, numel) rows
        for p, g in zip(after, after_rows):
            if id(p) in shared_ids:
                rows[id(p)] = g.reshape(g.shape[0], -1)
            else:
                self._add_grad([p], [g.sum(0)])
        if descent.gramian:  # every shared parameter is before z here
            self._gramian_at_features(
                descent, module, feats, feat_rows, before, shared_ids, scale
            )
        elif descent.jacobian == 'features':
            self._aggregate_features(
                descent, feats, feat_rows, before, after, rows, scale
            )
        else:
            before_rows = self._batched_vjps(
                feats, before, feat_rows, descent.parallel_chunk_size
            )
            for p, g in zip(before, before_rows):
                if id(p) in shared_ids:
                    rows[id(p)] = g.reshape(g.shape[0], -1)
                else:
                    self._add_grad([p], [g.sum(0)])
            jacobian = torch.cat([rows[id(p)] for p in shared], dim=1)
            if self._jacobian is None:
                self._jacobian = jacobian
            else:
                self._jacobian += jacobian
        if extra is not None:
            self._add_grad(
                params,
                torch.autograd.grad(extra * mult, params, allow_unused=True),
            )

    def _aggregate_features(
        self, descent, feats, feat_rows, before, after, rows, scale
    ):
        """Representation level: aggregate [dL/dz | dL/dθ_shared-after-z] at once; the
        z part goes back through the feature modules in one plain backward pass."""
        after_shared = [p for p in after if id(p) in rows]
        count = feat_rows[0].shape[0]
        matrix = torch.cat(
            [g.reshape(count, -1) for g in feat_rows]
            + [rows[id(p)] for p in after_shared],
            dim=1,
        )
        matrix = _at_least_float32(matrix) / scale
        if torch.isfinite(matrix).all():
            combined = descent.aggregator(matrix) * scale
        else:  # handed on as is: GradScaler skips the step
            combined = matrix.sum(0) * scale
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

    def _gramian_at_features(
        self, descent, module, feats, feat_rows, before, shared_ids, scale
    ):
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
        engine = descent.gramian_engine(module)
        gramian = engine.compute_gramian(projections) / (scale * scale)
        if torch.isfinite(gramian).all():
            weights = descent.weighting(_at_least_float32(gramian))
        else:  # handed on: GradScaler skips the step
            weights = torch.full_like(gramian[0], float('nan'))
        weights = weights.to(feat_rows[0].dtype)
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

    def _gramian_backward(
        self, descent, module, shared, other, task_losses, extra, mult
    ):
        engine = descent.gramian_engine(module)
        vector = torch.stack(task_losses) * mult
        gramian = engine.compute_gramian(vector)
        scale = self._scale()
        gramian = gramian / (scale * scale)
        if not torch.isfinite(gramian).all():
            weights = torch.full_like(vector, float('nan'))
        else:
            weights = descent.weighting(gramian)
        params = shared + other
        retain = True
        grads = torch.autograd.grad(
            vector,
            shared,
            grad_outputs=weights.to(vector.dtype),
            retain_graph=retain,
            allow_unused=True,
        )
        self._add_grad(shared, grads)
        grads = torch.autograd.grad(
            vector.sum() + (extra * mult if extra is not None else 0),
            other if extra is None else params,
            allow_unused=True,
        )
        self._add_grad(other if extra is None else params, grads)

    # ------------------------------------------------------------ aggregate
    def _reduce_other(self, other: List[nn.Parameter]) -> None:
        if not other:
            return
        world = _world_size()
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
        flat /= world
        offset = 0
        for p, has in zip(other, present.tolist()):
            n = p.numel()
            if has:
                p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def _aggregate(self, descent, shared, other, scale: float) -> None:
        if self._distributed:
            self._reduce_other(other)
        jacobian, self._jacobian = self._jacobian, None
        if jacobian is None:  # gramian / features path: the gradients are set
            return
        if self._distributed:
            dist.all_reduce(jacobian)
            jacobian /= _world_size()
        jacobian = jacobian / scale
        if torch.isfinite(jacobian).all():
            combined = descent.aggregator(jacobian) * scale
        else:
            # non-finite: handed to the step as is, where GradScaler skips it
            combined = jacobian.sum(0) * scale
        offset = 0
        for p in shared:
            n = p.numel()
            g = combined[offset : offset + n].view_as(p).to(p.dtype)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.add_(g)
            offset += n

    # ------------------------------------------------------------ step
    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            return super().step(**kwargs)
        if self.clip_grad_kwargs:
            self.loss_scaler.unscale_(self.optimizer)
            self._clip_grad()
        scale = self.loss_scaler.get_scale()
        self.loss_scaler.step(self.optimizer, **kwargs)
        self.loss_scaler.update()
        if self.loss_scaler.get_scale() < scale:
            self.skipped_steps += 1

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        raise RuntimeError(
            'JacobianOptimWrapper computes the gradients in update_params '
            '(per-task backward passes); call update_params(loss), not backward().'
        )

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.loss_scaler is not None:
            state['loss_scaler'] = self.loss_scaler.state_dict()
        state['skipped_steps'] = self.skipped_steps
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        scaler = state_dict.pop('loss_scaler', None)
        self.skipped_steps = state_dict.pop('skipped_steps', 0)
        if scaler is not None and self.loss_scaler is not None:
            self.loss_scaler.load_state_dict(scaler)
        super().load_state_dict(state_dict)
