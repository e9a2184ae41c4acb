"""``model.tasks``: the one validator of a model's task set.

``model.tasks`` maps each task to ``dict(kind, channels, loss, weight)``; the dataset base
configs derive it from their ``task_specs`` (docs/add_new_task.md). The model parses it when
it is built and the config checks (:mod:`ctal_mm.engine.config_checks`) report the same
problems before anything is built, so the two cannot disagree.
"""

import copy
from collections import OrderedDict
from typing import List, Mapping, Optional, Tuple

from mmengine.registry import Registry

from ctal_mm.registry import MODELS
from ctal_mm.structures import TASK_KINDS, get_task_kind

TASK_FIELDS = ('kind', 'channels', 'loss', 'weight')


class TaskSpecError(ValueError):
    """``model.tasks`` cannot be built; the message lists every problem with its fix."""


def _component_class(registry: Registry, type_):
    if isinstance(type_, type):
        return type_
    if not isinstance(type_, str):
        return None
    try:
        return registry.get(type_)
    except Exception:  # e.g. a scope whose package is not installed
        return None


def accepted_kinds(registry: Registry, type_) -> Optional[Tuple[str, ...]]:
    """The task kinds the loss or metric ``type_`` (a registered name or a class) accepts:
    its class's ``ACCEPTED_KINDS``; None when it declares none (not checked)."""
    kinds = getattr(_component_class(registry, type_), 'ACCEPTED_KINDS', None)
    return None if kinds is None else tuple(kinds)


def types_accepting(registry: Registry, kind: str) -> List[str]:
    """The registered names (this registry and its parents, in registration order) whose
    class accepts task kind ``kind``."""
    names = []
    while registry is not None:
        for name, cls in registry.module_dict.items():
            if kind in (getattr(cls, 'ACCEPTED_KINDS', None) or ()):
                if name not in names:
                    names.append(name)
        registry = registry.parent
    return names


def suggestion(suited: List[str], what: str, kind: str) -> str:
    """What to use instead: the registered ``what`` (loss, metric) types for ``kind``."""
    if suited:
        return f'Use {" or ".join(suited)}'
    return (
        f'No registered {what} accepts kind {kind!r}: register one whose '
        f"ACCEPTED_KINDS includes '{kind}'"
    )


def _task_problems(name: str, cfg: Mapping) -> Tuple[dict, List[str]]:
    key = f'model.tasks.{name}'
    if not isinstance(cfg, Mapping):
        return {}, [
            f'{key} must be a dict(kind=..., channels=..., loss=..., '
            f'weight=...), got {cfg!r}.'
        ]
    cfg = copy.deepcopy(dict(cfg))
    problems = []
    unknown = sorted(set(cfg) - set(TASK_FIELDS))
    if unknown:
        problems.append(
            f'{key} has unknown field(s) {unknown}; a task has '
            f"{list(TASK_FIELDS)} (its metric goes to the evaluators' "
            'task_metrics). Correct the name(s).'
        )
    try:
        kind = get_task_kind(name, {name: cfg.get('kind')})
    except KeyError as error:
        cfg.pop('kind', None)  # no kind: the other checks pass over this task
        return cfg, problems + [f'{key}: {error.args[0]}']
    cfg['kind'] = kind.name
    channels = cfg.get('channels')
    if (
        isinstance(channels, bool)
        or not isinstance(channels, int)
        or channels < 1
    ):
        problems.append(
            f"{key} needs 'channels' (a positive int: the number of output "
            f'channels), got {channels!r}. Set {key}.channels'
            + (
                ' to the number of classes.'
                if kind.has_classes
                else f'={(kind.head_channels or (1,))[-1]}.'
            )
        )
    elif kind.head_channels is not None and channels not in kind.head_channels:
        problems.append(
            f'{key}.channels={channels}; a {kind.name} head predicts '
            f'{" or ".join(map(str, kind.head_channels))} channel(s). Set '
            f'{key}.channels={kind.head_channels[-1]}.'
        )
    if 'loss' not in cfg:
        if kind.default_loss is None:
            problems.append(
                f"{key} needs 'loss': kind {kind.name!r} has no default loss. "
                "Name one, e.g. loss=dict(type='MyLoss')."
            )
        else:
            cfg['loss'] = copy.deepcopy(dict(kind.default_loss))
    loss = cfg.get('loss')
    loss_type = loss.get('type') if isinstance(loss, Mapping) else None
    fits = accepted_kinds(MODELS, loss_type)
    if fits is not None and kind.name not in fits:
        suited = types_accepting(MODELS, kind.name)
        problems.append(
            f'{key}.loss: {loss_type} is a loss for {" / ".join(fits)} '
            f"tasks, but '{name}' is a {kind.name} task. "
            f'{suggestion(suited, "loss", kind.name)} (or set {key}.kind).'
        )
    cfg.setdefault('weight', 1.0)
    return cfg, problems


def task_spec_problems(
    tasks: Optional[Mapping[str, Mapping]],
) -> Tuple['OrderedDict[str, dict]', List[str]]:
    """``tasks`` with defaults filled in (kind from the task name where the reference
    datasets fix it, the kind's default loss, weight 1), and every problem found."""
    if tasks is None:
        return OrderedDict(), [
            'model.tasks is not set. A config declares its task set in the dataset base '
            'config (tasks, task_specs) and gives the model model_tasks: '
            'model=dict(tasks=_base_.model_tasks, ...) in the config that joins a model '
            'and a dataset (docs/add_new_task.md). Or set model.tasks=dict(<task>=dict('
            f'kind=..., channels=...)); kinds: {sorted(TASK_KINDS)}.'
        ]
    if not isinstance(tasks, Mapping) or not tasks:
        return OrderedDict(), [
            'model.tasks must be a non-empty dict {task: dict(kind=..., '
            f'channels=..., loss=..., weight=...)}}, got {tasks!r}.'
        ]
    spec, problems = OrderedDict(), []
    for name, cfg in tasks.items():
        spec[name], found = _task_problems(name, cfg)
        problems += found
    return spec, problems


def parse_task_spec(tasks: Mapping[str, Mapping]) -> 'OrderedDict[str, dict]':
    """``model.tasks`` checked and with defaults filled in; TaskSpecError listing every
    problem otherwise (:func:`task_spec_problems`)."""
    spec, problems = task_spec_problems(tasks)
    if problems:
        raise TaskSpecError('\n'.join(problems))
    return spec
