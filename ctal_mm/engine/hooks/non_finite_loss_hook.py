"""Stop at the first non-finite loss or gradient, naming the task, or skip such steps."""

import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from ctal_mm.models.losses.loss_keys import counts_in_total, parse_loss_key
from ctal_mm.registry import HOOKS
from ctal_mm.utils.misc import few

MODES = ('stop', 'skip')
SKIPPED_INFO = (
    'non_finite_skipped_steps'  # message hub key, saved in checkpoints
)


class NonFiniteLossError(FloatingPointError):
    """A training loss was NaN or infinite (``on_non_finite='stop'``)."""


class NonFiniteGradientError(FloatingPointError):
    """A finite training loss gave a NaN or infinite gradient (``on_non_finite='stop'``)."""


def tensors_in(obj, prefix: str = '') -> Iterable[Tuple[str, torch.Tensor]]:
    """``(key path, tensor)`` of every tensor in nested dicts / lists (a state dict)."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from tensors_in(
                value, f'{prefix}.{key}' if prefix else str(key)
            )
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from tensors_in(value, f'{prefix}[{index}]')


def non_finite_names(named: Iterable[Tuple[str, torch.Tensor]]) -> List[str]:
    """The names of the floating-point tensors holding a NaN or an infinity.

    One flag per tensor on its device and one transfer to the host for all of them.
    """
    named = [(n, t) for n, t in named if t.is_floating_point() and t.numel()]
    if not named:
        return []
    flags = torch.stack(
        [~torch.isfinite(t).all().to(named[0][1].device) for _, t in named]
    ).cpu()
    return [name for (name, _), bad in zip(named, flags) if bad]


def _max_abs(tensors: List[torch.Tensor]) -> List[torch.Tensor]:
    """Each tensor's largest absolute value (NaN if it has one), fused where torch can."""
    try:
        return list(torch._foreach_norm(tensors, math.inf))
    except (AttributeError, RuntimeError):  # mixed devices or dtypes
        return [t.abs().amax() for t in tensors]


def named_list(names: List[str], shown: int = 4) -> str:
    """``'a, b, c, d and 3 more'``."""
    more = len(names) - shown
    return ', '.join(names[:shown]) + (f' and {more} more' if more > 0 else '')


def describe_term(key: str, tasks: Sequence[str]) -> str:
    """``'final.depth.loss'`` -> ``"final.depth.loss (task 'depth', final loss)"``, for a
    model with the task ``'depth'``; any other term is named by its key."""
    parsed = parse_loss_key(key, tasks)
    if isinstance(parsed, tuple):
        stage, task = parsed
        return f"{key} (task '{task}', {stage} loss)"
    return key


def _terms(losses: dict) -> Dict[str, List[torch.Tensor]]:
    # The terms mmengine's BaseModel.parse_losses sums into the total.
    terms = {}
    for key, value in losses.items():
        if not counts_in_total(key):
            continue
        values = [value] if isinstance(value, torch.Tensor) else list(value)
        terms[key] = [v.detach() for v in values]
    return terms


def _wrappers(optim_wrapper) -> list:
    if isinstance(optim_wrapper, OptimWrapperDict):
        return list(optim_wrapper.optim_wrappers.values())
    return [optim_wrapper]


def _optimizers(optim_wrapper) -> List[torch.optim.Optimizer]:
    return [w.optimizer for w in _wrappers(optim_wrapper)]


def _batch_names(args, kwargs) -> str:
    samples = kwargs.get('data_samples')
    if samples is None and len(args) > 1:
        samples = args[1]
    names = []
    for sample in samples or []:
        meta = getattr(sample, 'metainfo', {})
        names.append(
            str(meta.get('img_path') or f'sample {meta.get("sample_idx")}')
        )
    if not names:
        return ''
    return f' The batch (this rank): {few(names)}.'


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Checks every training loss before the optimizer step uses it.

    The total loss is the sum of the model's loss terms (``'<stage>.<task>.loss'``, and
    the weighting's regularisers, see :mod:`ctal_mm.models.losses.loss_keys`); when it
    is NaN or infinite (on any rank), the terms at fault are named, e.g.
    ``final.depth.loss (task 'depth', final loss) = inf``, and:

    * ``on_non_finite='stop'`` (default): training stops with :class:`NonFiniteLossError`
      before the step is applied, so the weights and the last checkpoint stay good;
    * ``on_non_finite='skip'``: the step is not applied: the optimizer sees no gradient, so
      weights and optimizer state are unchanged; the BatchNorm statistics the step's forward
      moved are restored; the learning-rate schedule moves on. A warning names the terms,
      each epoch logs its count, and the run's total is kept in the message hub
      (``non_finite_skipped_steps``, saved in checkpoints). With gradient accumulation the
      whole accumulated step is skipped.

    Gradients are checked too, before each optimizer step: a finite loss whose gradient is
    NaN or infinite stops with :class:`NonFiniteGradientError` (``'stop'``), naming the step,
    the tasks whose own layers got the non-finite gradient and the last checkpoint, or the
    step is skipped as above (``'skip'``). The check costs one transfer to the host per step
    (the infinity norm of all gradients); with ``optim_wrapper.clip_grad`` of norm type it
    reads the total norm the clipping computed and logged, and costs none. With mixed
    precision and a loss scaler the scaler skips overflowing steps itself, before this check.

    In distributed training the loss verdict is shared (one small all-reduce per iteration),
    so every rank stops, or skips, together; gradients are the same on every rank after
    DDP's all-reduce, and so is the gradient verdict.

    Args:
        on_non_finite: ``'stop'`` or ``'skip'``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, on_non_finite: str = 'stop'):
        if on_non_finite not in MODES:
            raise ValueError(
                f'NonFiniteLossHook: on_non_finite={on_non_finite!r}; expected '
                f'one of {MODES} (default_hooks.non_finite.on_non_finite).'
            )
        self.on_non_finite = on_non_finite
        self._handles = []
        self._pending_skip = set()
        self._runner = None
        self._buffers = {}
        self._restore = None
        self.skipped_in_epoch = 0

    # ----------------------------------------------------------------- wiring
    def before_train(self, runner) -> None:
        self._runner = runner
        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        # A forward hook sees the loss dict of every training step, under any model wrapper
        # and before parse_losses and the optimizer; no train_step is overridden.
        self._handles.append(
            model.register_forward_hook(self._check, with_kwargs=True)
        )
        self._model = model
        self._clip_norm = {}
        self._pre_clip = {}
        for wrapper in _wrappers(runner.optim_wrapper):
            # before _drop_gradients: step pre-hooks run in registration order
            self._handles.append(
                wrapper.optimizer.register_step_pre_hook(self._check_gradients)
            )
            self._watch_clipping(wrapper)
        if self.on_non_finite == 'skip':
            self._handles.append(
                model.register_forward_pre_hook(
                    self._save_buffers, with_kwargs=True
                )
            )
            for optimizer in _optimizers(runner.optim_wrapper):
                self._handles.append(
                    optimizer.register_step_pre_hook(self._drop_gradients)
                )

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for wrapper, clip_func in getattr(self, '_clip_funcs', []):
            wrapper.clip_func = clip_func
        self._clip_funcs = []
        self._runner = None
        total = runner.message_hub.get_info(SKIPPED_INFO, 0)
        if total:
            runner.logger.warning(
                f'{total} training step(s) were skipped for a non-finite loss or gradient.'
            )

    def before_train_epoch(self, runner) -> None:
        self.skipped_in_epoch = 0

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ) -> None:
        if self._restore is not None:
            with torch.no_grad():
                for name, buffer in self._restore.named_buffers():
                    buffer.copy_(self._buffers[name])
            self._restore = None

    def after_train_epoch(self, runner) -> None:
        if self.skipped_in_epoch:
            total = runner.message_hub.get_info(SKIPPED_INFO, 0)
            runner.logger.warning(
                f'Epoch {runner.epoch + 1}: skipped {self.skipped_in_epoch} '
                f'step(s) with a non-finite loss or gradient ({total} in this run).'
            )

    # ----------------------------------------------------------------- checks
    def _save_buffers(self, module, args, kwargs):
        # The forward of a step to be skipped has already moved BatchNorm's running
        # statistics (to NaN, if the fault is upstream of a BatchNorm): keep a copy to undo it.
        if kwargs.get('mode') == 'loss' and module.training:
            self._buffers = {
                name: buffer.detach().clone()
                for name, buffer in module.named_buffers()
            }
        return None

    def _check(self, module, args, kwargs, output):
        if (
            kwargs.get('mode') != 'loss'
            or not module.training
            or not isinstance(output, dict)
        ):
            return None
        terms = _terms(output)
        if not terms:
            return None
        # flags on the loss's device, one transfer to the host (not one per term)
        flags = [
            torch.stack([~torch.isfinite(v).all() for v in values]).any()
            for values in terms.values()
        ]
        total = sum(v.float().mean() for vs in terms.values() for v in vs)
        flags.append(~torch.isfinite(total))
        local = torch.stack(flags).float()
        shared = local
        if dist.is_available() and dist.is_initialized():
            shared = local.clone()
            dist.all_reduce(shared, op=dist.ReduceOp.MAX)
        local, shared = local.cpu(), shared.cpu()
        if not bool(shared.any()):
            return None
        message = self._describe(terms, local, shared, total, args, kwargs)
        if self.on_non_finite == 'stop':
            raise NonFiniteLossError(message + self._stop_advice())
        return self._skip(module, output, message)

    def _count_skip(self, message: str) -> None:
        runner = self._runner
        self.skipped_in_epoch += 1
        total = runner.message_hub.get_info(SKIPPED_INFO, 0) + 1
        runner.message_hub.update_info(SKIPPED_INFO, total)
        runner.logger.warning(
            f'{message} ({total} so far); set '
            "default_hooks.non_finite.on_non_finite='stop' to stop instead."
        )

    def _stop_advice(self) -> str:
        last = None
        if self._runner is not None:
            last = self._runner.message_hub.get_info('last_ckpt')
        return (
            ' Training stopped before applying this step; the last good '
            f'checkpoint is {last or "(none saved yet)"}. Fix: lower '
            'optim_wrapper.optimizer.lr, clip gradients '
            '(optim_wrapper.clip_grad=dict(max_norm=...)), check the files '
            "of this batch, or set default_hooks.non_finite.on_non_finite='skip'"
            ' to skip such steps, then resume with --resume.'
        )

    def _describe(self, terms, local, shared, total, args, kwargs) -> str:
        runner = self._runner
        model = getattr(self, '_model', None)
        tasks = list(getattr(model, 'tasks', None) or [])
        bad = []
        for index, (key, values) in enumerate(terms.items()):
            if not shared[index]:
                continue
            if local[index]:
                value = sum(v.float().mean() for v in values)
                bad.append(f'{describe_term(key, tasks)} = {float(value)}')
            else:
                bad.append(
                    f'{describe_term(key, tasks)} (non-finite on another rank)'
                )
        if not bad:  # finite terms whose sum overflowed
            bad.append(f'the sum of the terms = {float(total)}')
        where = (
            f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
            if runner is not None
            else 'this iteration'
        )
        return (
            f'Non-finite total loss at {where}: '
            + '; '.join(bad)
            + '.'
            + _batch_names(args, kwargs)
        )

    def _skip(self, module, output: dict, message: str) -> dict:
        runner = self._runner
        # restored after backward (after_train_iter): BatchNorm's backward checks that its
        # running statistics were not modified in place since the forward
        self._restore = module
        self._pending_skip = {id(o) for o in _optimizers(runner.optim_wrapper)}
        self._count_skip(f'{message} Skipped this step')

        # The logged terms read 0 for this step rather than NaN, which would otherwise
        # stay in the smoothed log values for a whole window. The step is dropped anyway.
        def finite(value):
            return torch.where(
                torch.isfinite(value), value, torch.zeros_like(value)
            )

        return {
            key: (
                finite(value)
                if isinstance(value, torch.Tensor)
                else [finite(v) for v in value]
            )
            if counts_in_total(key)
            else value
            for key, value in output.items()
        }

    # -------------------------------------------------------------- gradients
    def _watch_clipping(self, wrapper) -> None:
        # mmengine's clipping computes the total norm and logs it as a Python float (its
        # own transfer to the host): note that it ran, then read the logged value
        clip_func = getattr(wrapper, 'clip_func', None)
        if (
            clip_func is None
            or getattr(wrapper, 'grad_name', '') != 'grad_norm'
        ):
            return
        if not hasattr(self, '_clip_funcs'):
            self._clip_funcs = []
        self._clip_funcs.append((wrapper, clip_func))
        key = id(wrapper.optimizer)

        def clip_and_note(params, *args, **kwargs):
            # A non-finite norm makes the clipping multiply every gradient by NaN: keep
            # which ones were non-finite before (on the device; read only on failure).
            params = list(params)
            self._pre_clip[key] = (params, _max_abs([p.grad for p in params]))
            norm = clip_func(params, *args, **kwargs)
            self._clip_norm[key] = f'train/{wrapper.grad_name}'
            return norm

        wrapper.clip_func = clip_and_note

    def _gradient_norm(self, optimizer) -> float:
        logged = self._clip_norm.pop(id(optimizer), None)
        if logged is not None and id(optimizer) in self._pre_clip:
            return self._runner.message_hub.get_scalar(logged).current()
        grads = [
            p.grad
            for group in optimizer.param_groups
            for p in group['params']
            if p.grad is not None
        ]
        if not grads:
            return 0.0
        # the infinity norm: NaN and inf propagate, and no finite gradient overflows
        return float(torch.nn.utils.get_total_norm(grads, norm_type=math.inf))

    def _check_gradients(self, optimizer, args, kwargs) -> None:
        if self._runner is None or id(optimizer) in self._pending_skip:
            return None  # a skipped step's gradients are dropped anyway
        norm = self._gradient_norm(optimizer)
        if math.isfinite(norm):
            self._pre_clip.pop(id(optimizer), None)
            return None
        message = self._describe_gradients(optimizer, norm)
        if self.on_non_finite == 'stop':
            raise NonFiniteGradientError(message + self._stop_advice())
        self._restore = self._model
        self._pending_skip.add(
            id(optimizer)
        )  # _drop_gradients, registered after us
        self._count_skip(f'{message} Skipped this step')
        return None

    def _describe_gradients(self, optimizer, norm: float) -> str:
        runner = self._runner
        names = {id(p): n for n, p in self._model.named_parameters()}
        clipped = self._pre_clip.pop(id(optimizer), None)
        if (
            clipped is not None
        ):  # the gradients as they were before the clipping
            params, max_abs = clipped
            bad = non_finite_names(
                (names.get(id(p), '?'), m) for p, m in zip(params, max_abs)
            )
        else:
            bad = non_finite_names(
                (names.get(id(p), '?'), p.grad)
                for group in optimizer.param_groups
                for p in group['params']
                if p.grad is not None
            )
        tasks = list(getattr(self._model, 'tasks', None) or [])
        # a task's own layers carry its name; shared layers get every task's gradient, so
        # only the task-specific ones tell which loss it came from
        own = [t for t in tasks if any(t in name.split('.') for name in bad)]
        told = (
            f' The tasks whose own layers have one: {", ".join(own)}.'
            if own
            else ' No task-specific layer has one (it arose in shared layers).'
            if tasks
            else ''
        )
        return (
            f'Non-finite gradient at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}) of a finite loss: gradient norm {norm}; '
            f'{len(bad)} parameter(s) with a NaN or infinite gradient '
            f'({named_list(bad)}).{told}'
        )

    def _drop_gradients(self, optimizer, args, kwargs) -> Optional[tuple]:
        # torch optimizers leave parameters without a gradient untouched (no update, no
        # momentum or weight decay, no step count): the step becomes a no-op.
        if id(optimizer) not in self._pending_skip:
            return None
        self._pending_skip.discard(id(optimizer))
        for group in optimizer.param_groups:
            for param in group['params']:
                param.grad = None
        return None
