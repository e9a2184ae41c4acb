"""Gradient-level multitask methods: torchjd's aggregators on the shared parameters.

``model.aggregator=dict(type='UPGrad')`` (any torchjd aggregator, by its class name) makes the
parameters shared by the tasks (by default the backbone and the neck) take the aggregation of
the per-task gradients (the rows of the Jacobian) instead of their sum; every other parameter
keeps the gradient of the total loss, which for a task-specific parameter is its own task's
gradient. The optimiser wrapper :class:`~ctal_mm.engine.optimizers.JacobianOptimWrapper`
computes the Jacobian, reduces it over the processes and aggregates it; this module holds what
the model knows: the aggregator, which parameters are shared, and how its losses form tasks.
"""

import inspect
from typing import (
    Dict,
    Iterable,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

import torch
from torch import Tensor, nn
from torchjd import aggregation as tja

from ctal_mm.registry import AGGREGATORS

from ..losses.loss_keys import counts_in_total, parse_loss_key

OPTIONAL_HINT = (
    'Install the optional extras with `pip install -r requirements/optional.txt` '
    '(or `pip install "torchjd[cagrad]"` for CAGrad, "torchjd[nash_mtl]" for NashMTL).'
)

_BASES = (
    tja.Aggregator,
    tja.WeightedAggregator,
    tja.GramianWeightedAggregator,
)


def _register_torchjd_aggregators() -> None:
    for name in tja.__all__:
        obj = getattr(tja, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, tja.Aggregator)
            and obj not in _BASES
            and not inspect.isabstract(obj)
            and name not in AGGREGATORS.module_dict
        ):
            AGGREGATORS.register_module(name=name, module=obj)


_register_torchjd_aggregators()


def build_aggregator(cfg: Mapping, num_tasks: int) -> tja.Aggregator:
    """Build ``model.aggregator`` (a dict with ``type``: a torchjd class name).

    ``n_tasks`` (NashMTL) defaults to the number of tasks; list-valued
    ``pref_vector`` / ``weights`` become tensors.
    """
    if not isinstance(cfg, Mapping) or 'type' not in cfg:
        raise TypeError(
            "model.aggregator must be a dict with a 'type' (a torchjd aggregator "
            f"class name, e.g. dict(type='UPGrad')), got {cfg!r}."
        )
    args = dict(cfg)
    name = args.pop('type')
    cls = AGGREGATORS.get(name) if isinstance(name, str) else name
    if cls is None:
        raise KeyError(
            f'model.aggregator.type={name!r} is not a torchjd aggregator; '
            f'registered: {sorted(AGGREGATORS.module_dict)}.'
        )
    params = inspect.signature(cls.__init__).parameters
    if 'n_tasks' in params and 'n_tasks' not in args:
        args['n_tasks'] = num_tasks
    for key in ('pref_vector', 'weights'):
        if isinstance(args.get(key), (list, tuple)):
            args[key] = torch.tensor(args[key], dtype=torch.float32)
    try:
        return cls(**args)
    except ImportError as error:
        raise ImportError(
            f'model.aggregator.type={name!r} needs packages that are not '
            f'installed: {error} {OPTIONAL_HINT}'
        ) from error
    except TypeError as error:
        raise TypeError(
            f'model.aggregator={dict(cfg)!r}: {error}. The arguments are those '
            f'of torchjd.aggregation.{cls.__name__}{inspect.signature(cls)}.'
        ) from error


def group_task_losses(
    losses: Mapping[str, Tensor], tasks: Sequence[str]
) -> Tuple[List[Tensor], Optional[Tensor]]:
    """Sum the model's logged loss terms per task: ``(stage, task)`` terms -> task.

    ``losses`` is the loss dict as it left the model (string keys, read back by
    :func:`~ctal_mm.models.losses.loss_keys.parse_loss_key`). Returns the T task losses
    (in ``tasks`` order) and the sum of every other term that counts in the total (keys
    containing ``'loss'``, e.g. an uncertainty regulariser), or None. A task with no term
    is an error: its Jacobian row would be empty.
    """
    per_task: Dict[str, List[Tensor]] = {task: [] for task in tasks}
    extra = []
    for name, value in losses.items():
        if not counts_in_total(name):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        total = sum(v.mean() for v in values)
        key = parse_loss_key(name, tasks)
        if isinstance(key, tuple):
            _, task = key
            per_task[task].append(total)
        else:
            extra.append(total)
    missing = [task for task, terms in per_task.items() if not terms]
    if missing:
        raise KeyError(
            f'model.aggregator: no loss term for task(s) {missing}; the loss '
            f"keys are {list(losses)} (expected '<stage>.<task>.loss')."
        )
    return [sum(terms) for terms in per_task.values()], (
        sum(extra) if extra else None
    )


class SharedFeatures(NamedTuple):
    """What the model recorded in one training step: the shared features z and the
    ids of the parameters of the modules that computed them."""

    tensors: List[Tensor]
    parameter_ids: Set[int]


class JacobianDescent:
    """What a model with ``aggregator=`` tells the optimiser wrapper.

    Args:
        aggregator: the ``model.aggregator`` config: a torchjd aggregator (``type`` and
            its arguments) and the options of the gradient computation below.
        tasks: the model's task names (the rows of the Jacobian, in order).
        shared_modules: names of the submodules whose parameters the tasks share
            (``model.get_submodule`` names, e.g. ``'backbone'``, ``'neck'``,
            ``'decoder.affinity'``). A default name the model lacks (no neck) is skipped.

    The options read from ``model.aggregator`` (and not handed to the aggregator):

    * ``gramian`` (False): compute only the Gramian of the Jacobian of the shared
      parameters with torchjd's autogram engine, never the T x P Jacobian
      (aggregators with a weighting form only; single process; see docs/mtl_methods.md).
    * ``jacobian`` (``'parameters'``, exact): the aggregator combines the rows of the
      Jacobian of the shared parameters. ``'features'``: the representation-level
      variant (MGDA-UB style, not exact): it combines the rows of the Jacobian of the
      shared features (those the model records, see below) and of the shared parameters
      after them, and the combined feature gradient goes back through the feature
      modules in one backward pass. Single process.
    * ``parallel_chunk_size`` (1): how many of the T vector-Jacobian products through
      the feature modules one batched (``torch.vmap``) backward pass computes: 1 a plain
      loop, None all T at once, or a positive int. Batching was slower on 2 CPU cores
      (configs/mtl_methods/README.md); it may pay on a GPU.

    The exchange with :class:`~ctal_mm.engine.optimizers.JacobianOptimWrapper` in a
    training step: the wrapper calls :meth:`begin_step` before the model's forward; the
    model may call :meth:`record_features` during it, with its shared features and the
    modules that computed them (which lets the wrapper split the backward pass there);
    the wrapper takes them with :meth:`end_step` when it computes the gradients.
    :attr:`step_open` tells the model that the wrapper is the one training it.
    """

    DEFAULT_SHARED = ('backbone', 'neck')
    JACOBIANS = ('parameters', 'features')

    def __init__(
        self,
        aggregator: Mapping,
        tasks: Sequence[str],
        shared_modules: Optional[Sequence[str]] = None,
    ):
        self.tasks = list(tasks)
        aggregator = dict(aggregator)
        gramian = aggregator.pop('gramian', False)
        jacobian = aggregator.pop('jacobian', 'parameters')
        parallel_chunk_size = aggregator.pop('parallel_chunk_size', 1)
        if jacobian not in self.JACOBIANS:
            raise ValueError(
                f'model.aggregator.jacobian must be one of {self.JACOBIANS}, '
                f'got {jacobian!r}.'
            )
        if parallel_chunk_size is not None and (
            not isinstance(parallel_chunk_size, int) or parallel_chunk_size < 1
        ):
            raise ValueError(
                'model.aggregator.parallel_chunk_size must be None or a positive '
                f'int, got {parallel_chunk_size!r}.'
            )
        if gramian and jacobian == 'features':
            raise ValueError(
                "model.aggregator: gramian=True and jacobian='features' exclude "
                'each other (the features path never forms the parameter Jacobian).'
            )
        self.jacobian = jacobian
        self.parallel_chunk_size = parallel_chunk_size
        self.aggregator = build_aggregator(aggregator, len(self.tasks))
        self.explicit_shared = shared_modules is not None
        self.shared_modules = tuple(
            self.DEFAULT_SHARED if shared_modules is None else shared_modules
        )
        self.gramian = gramian
        if gramian and self.weighting is None:
            gramian_based = sorted(
                n
                for n, c in AGGREGATORS.module_dict.items()
                if issubclass(c, tja.GramianWeightedAggregator)
            )
            raise ValueError(
                f'model.aggregator: {type(self.aggregator).__name__} has no '
                'Gramian (weighting) form, so gramian=True cannot be used; '
                f'Gramian-based ones: {gramian_based}.'
            )
        self._engine = None
        self.step_open = False
        self._features: Optional[SharedFeatures] = None

    @property
    def weighting(self):
        """The aggregator's weighting of the Gramian, or None when it has none."""
        if isinstance(self.aggregator, tja.GramianWeightedAggregator):
            return self.aggregator.gramian_weighting
        return None

    def shared_module_list(self, model: nn.Module) -> List[nn.Module]:
        modules = []
        for name in self.shared_modules:
            try:
                module = model.get_submodule(name)
            except AttributeError:
                if not self.explicit_shared:
                    continue
                raise KeyError(
                    f'model.shared_modules: the model has no submodule '
                    f'{name!r}; its top-level modules are '
                    f'{[n for n, _ in model.named_children()]}.'
                ) from None
            if module is None:
                continue
            modules.append(module)
        if not modules:
            raise ValueError(
                'model.aggregator: no shared parameters (model.shared_modules='
                f'{self.shared_modules!r} names no module with parameters).'
            )
        return modules

    def split_parameters(
        self, model: nn.Module
    ) -> Tuple[List[nn.Parameter], List[nn.Parameter]]:
        """(shared, other) trainable parameters, each in the model's order."""
        shared_ids = {
            id(p)
            for module in self.shared_module_list(model)
            for p in module.parameters()
        }
        shared, other = [], []
        for p in model.parameters():
            if p.requires_grad:
                (shared if id(p) in shared_ids else other).append(p)
        if not shared:
            raise ValueError(
                f'model.aggregator: the shared modules {self.shared_modules} '
                'have no trainable parameter.'
            )
        return shared, other

    def gramian_engine(self, model: nn.Module):
        """torchjd's autogram engine over the shared modules (built once)."""
        if self._engine is None:
            from torchjd.autogram import Engine

            self._engine = Engine(
                *self.shared_module_list(model), batch_dim=None
            )
        return self._engine

    # ------------------------------------------------------------ a step
    def begin_step(self) -> None:
        """The wrapper, before the model's training forward."""
        self.step_open = True
        self._features = None

    def record_features(
        self,
        features: Union[Tensor, Sequence[Tensor]],
        modules: Iterable[Optional[nn.Module]],
    ) -> None:
        """The model, during a training forward: its shared features (a tensor or a
        sequence of them) and the modules that computed them from the input (None
        entries are skipped). Outside a step (evaluation, a plain optimiser wrapper)
        nothing is recorded."""
        if not self.step_open:
            return
        tensors = [features] if torch.is_tensor(features) else list(features)
        if not tensors or not all(t.requires_grad for t in tensors):
            raise RuntimeError(
                'jacobian_descent.record_features: the shared features must be '
                'tensors that require grad (got '
                f'{[tuple(t.shape) for t in tensors]}, requires_grad '
                f'{[t.requires_grad for t in tensors]}).'
            )
        self._features = SharedFeatures(
            tensors,
            {
                id(p)
                for module in modules
                if module is not None
                for p in module.parameters()
            },
        )

    def end_step(self) -> Optional[SharedFeatures]:
        """The wrapper, when it computes the gradients: the recorded features (None
        when the model recorded none); closes the step."""
        features, self._features = self._features, None
        self.step_open = False
        return features
