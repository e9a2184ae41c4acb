"""A dataset's task set, declared once as ``task_specs``, turned into the model's, the datasets'
and the evaluators' settings.

A dataset base config (``configs/_base_/datasets/*.py``) declares::

    tasks = ('semseg', 'depth')          # the selection: what is trained, loaded and scored
    task_specs = dict(                   # every task the dataset offers
        semseg=dict(kind='segmentation', loss=dict(type='MTCrossEntropyLoss'), weight=1.0,
                    metric=dict(type='SegmentationMetric')),
        depth=dict(kind='depth', channels=1, loss=dict(type='MaskedL1DepthLoss'),
                   weight=10.0, metric=dict(type='DepthMetric')),
    )

and :func:`apply_task_specs` derives, for the selected tasks:

* ``model.tasks``: each spec without its ``metric`` (with the entries a config or
  ``--cfg-options`` sets under ``model.tasks.<task>`` merged over it), in ``task_specs``' order
  (the model's
  task order: heads, losses and CTAL's fusion input follow it, so a checkpoint depends on it);
  a segmentation task without ``channels`` gets the class count of the dataset
  (``classes`` / ``<task>_classes`` of its METAINFO, see
  :meth:`~ctal_mm.datasets.BaseMultiTaskDataset.task_classes`);
* ``<loader>.dataset.tasks``: the selection, in its order (where a loader sets its own, e.g.
  ``--cfg-options train_dataloader.dataset.tasks=[...]`` to browse more tasks, it stands);
* ``val_evaluator`` / ``test_evaluator``'s ``task_metrics``: each selected task's ``metric``
  in the selection's order, with the evaluator's own ``task_metrics.<task>`` entries merged over
  it (e.g. fewer edge thresholds in validation); a segmentation metric without
  ``num_classes`` gets the task's channels.

Because MMEngine evaluates each base file once, a child config cannot re-run a base's
comprehension; it changes ``tasks`` (drop or add a task: one edit) or ``task_specs`` (merged
into the base's, e.g. ``task_specs = dict(semseg=dict(weight=2.0))``), and the derivation
happens when the config is loaded (:func:`ctal_mm.engine.config_loading.load_config`) or the
Runner is built (:class:`~ctal_mm.engine.runner.MultiTaskRunner`). The resolved config holds
the derived settings and no longer ``tasks`` / ``task_specs``, so resolving twice changes
nothing. A config without ``task_specs`` (an explicit ``model.tasks``) is left as it is.
"""

import copy
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict

from ctal_mm.structures.task_kinds import TASK_KINDS

SELECTION_KEY = 'tasks'
SPECS_KEY = 'task_specs'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')
SPEC_FIELDS = ('kind', 'channels', 'loss', 'weight', 'metric')
HOW = (
    'Select tasks with tasks=(...) (one edit: a task not listed is not built, loaded or '
    "scored) and change one task's settings with task_specs=dict(<task>=dict(...)), "
    'merged into the dataset base config (docs/add_new_task.md).'
)


class TaskSpecError(ValueError):
    """``tasks`` / ``task_specs`` cannot be turned into settings; the message names the key
    and the fix."""


def _plain(value):
    return value.to_dict() if isinstance(value, ConfigDict) else value


def _check_specs(specs) -> Dict[str, dict]:
    if not isinstance(specs, Mapping) or not specs:
        raise TaskSpecError(
            f'{SPECS_KEY} must be a non-empty dict {{task: dict(kind=..., channels=..., '
            f'loss=..., weight=..., metric=...)}}, got {specs!r}. {HOW}'
        )
    checked = {}
    for task, spec in specs.items():
        if (
            task == '_delete_'
        ):  # mmengine's merge marker, left over in a base file
            continue
        key = f'{SPECS_KEY}.{task}'
        if spec is None:
            raise TaskSpecError(
                f'{key} is None. To drop the task, leave its spec and remove '
                f"'{task}' from {SELECTION_KEY}=(...) instead."
            )
        if not isinstance(spec, Mapping):
            raise TaskSpecError(
                f'{key} must be a dict(kind=..., channels=..., loss=..., weight=..., '
                f'metric=...), got {spec!r}.'
            )
        unknown = sorted(set(spec) - set(SPEC_FIELDS))
        if unknown:
            raise TaskSpecError(
                f'{key} has unknown field(s) {unknown}; a task spec has '
                f'{list(SPEC_FIELDS)}. Correct the name(s).'
            )
        kind = spec.get('kind')
        if kind is None:
            raise TaskSpecError(
                f"{key} has no 'kind'. Set {key}.kind to one of "
                f'{sorted(TASK_KINDS)} (a new task needs its full spec: kind, channels, '
                'loss, weight, metric).'
            )
        if kind not in TASK_KINDS:
            raise TaskSpecError(
                f'{key}.kind={kind!r} is not a task kind; use one of '
                f'{sorted(TASK_KINDS)}.'
            )
        checked[task] = copy.deepcopy(_plain(spec))
    return checked


def _selection(cfg, specs: Mapping) -> Tuple[str, ...]:
    selection = cfg.get(SELECTION_KEY)
    if selection is None:
        return tuple(specs)
    if isinstance(selection, str):
        selection = (selection,)
    if not isinstance(selection, (list, tuple)) or not selection:
        raise TaskSpecError(
            f'{SELECTION_KEY}={selection!r}; expected a non-empty tuple of task names '
            f'from {SPECS_KEY}: {list(specs)}.'
        )
    selection = tuple(selection)
    unknown = [t for t in selection if t not in specs]
    if unknown:
        raise TaskSpecError(
            f'{SELECTION_KEY}={list(selection)} names {unknown}, which {SPECS_KEY} does '
            f'not declare (it has {list(specs)}). Correct the name, or declare the task '
            f'with {SPECS_KEY}=dict({unknown[0]}=dict(kind=..., channels=..., loss=..., '
            'weight=..., metric=...)).'
        )
    repeated = sorted({t for t in selection if selection.count(t) > 1})
    if repeated:
        raise TaskSpecError(
            f'{SELECTION_KEY}={list(selection)} names {repeated} more than once; list '
            'each task once.'
        )
    return selection


def _dataset_cfgs(dataset) -> List[Mapping]:
    """The dataset configs a dataloader's ``dataset`` holds (inside wrappers too)."""
    if not isinstance(dataset, Mapping):
        return []
    if 'datasets' in dataset:  # ConcatDataset
        return [d for sub in dataset['datasets'] for d in _dataset_cfgs(sub)]
    if 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset
        return _dataset_cfgs(dataset['dataset'])
    return [dataset]


def _classes(task: str, cfg) -> Tuple[Optional[Sequence], str]:
    """The class names of segmentation ``task`` from the first dataloader's dataset, and
    which dataset they came from."""
    from ctal_mm.registry import DATASETS

    for loader in LOADERS:
        for dataset in _dataset_cfgs((cfg.get(loader) or {}).get('dataset')):
            dataset_type = dataset.get('type')
            try:
                cls = (
                    DATASETS.get(dataset_type)
                    if isinstance(dataset_type, str)
                    else None
                )
            except Exception:  # a scope whose package is not installed
                cls = None
            if cls is None:
                continue
            task_classes = getattr(cls, 'task_classes', None)
            if task_classes is None:
                continue
            return task_classes(
                task, dataset
            ), f'{loader}.dataset ({dataset_type})'
    return None, 'no dataloader with a ctal_mm dataset'


def _merge_overrides(key: str, overrides, specs: Mapping) -> Dict[str, dict]:
    """``specs`` with the entries ``key`` (``model.tasks``, e.g. from ``--cfg-options
    model.tasks.semseg.weight=2``) merged over them."""
    overrides = _without_delete_marker(key, overrides)
    unknown = [t for t in overrides if t not in specs]
    if unknown:
        raise TaskSpecError(
            f'{key} names {unknown}, which {SPECS_KEY} does not declare (it has '
            f'{list(specs)}). Declare a new task in {SPECS_KEY} and select it in '
            f'{SELECTION_KEY}=(...). {HOW}'
        )
    merged = {}
    for task, spec in specs.items():
        override = overrides.get(task)
        if override is None:
            merged[task] = spec
            continue
        merged[task] = _merged(override, spec)
    return _check_specs(merged)


def _without_delete_marker(key: str, overrides) -> Dict[str, dict]:
    """Per-task entries ``overrides`` as a plain dict. A ``_delete_`` beside them is left
    over from a base without them: the selection, not this dict, says which tasks exist."""
    overrides = _plain(overrides) or {}
    if not isinstance(overrides, Mapping):
        raise TaskSpecError(
            f'{key}={overrides!r}; expected a dict of per-task changes. {HOW}'
        )
    return {t: v for t, v in overrides.items() if t != '_delete_'}


def _merged(override, base) -> dict:
    """``override`` merged over ``base`` as a child config's dict over its base's
    (``_delete_=True`` in it replaces ``base``)."""
    override = copy.deepcopy(_plain(override) or {})
    if override.pop('_delete_', False):
        return override
    return _plain(Config._merge_a_into_b(override, copy.deepcopy(base or {})))


def _model_tasks(
    specs: Mapping, selection: Sequence[str], cfg
) -> Dict[str, dict]:
    tasks = {}
    for task, spec in specs.items():
        if task not in selection:
            continue
        spec = {k: copy.deepcopy(v) for k, v in spec.items() if k != 'metric'}
        if spec['kind'] == 'segmentation' and spec.get('channels') is None:
            classes, source = _classes(task, cfg)
            if not classes:
                raise TaskSpecError(
                    f'{SPECS_KEY}.{task}.channels is not set and the class count cannot '
                    f'be read from the dataset ({source} has no {task} classes). Set '
                    f'{SPECS_KEY}.{task}.channels to the number of classes.'
                )
            spec['channels'] = len(classes)
        if not isinstance(spec.get('channels'), int) or spec['channels'] < 1:
            raise TaskSpecError(
                f'{SPECS_KEY}.{task}.channels={spec.get("channels")!r}; a {spec["kind"]} '
                f'task needs its output channels, a positive int. Set '
                f'{SPECS_KEY}.{task}.channels.'
            )
        # the field order of the model's spec: kind, channels, loss, weight
        tasks[task] = {k: spec[k] for k in SPEC_FIELDS if k in spec}
    return tasks


def _task_metrics(
    section: str,
    evaluator: Mapping,
    specs: Mapping,
    selection: Sequence[str],
    tasks: Mapping,
) -> Dict[str, dict]:
    overrides = _without_delete_marker(
        f'{section}.task_metrics', evaluator.get('task_metrics')
    )
    unknown = [t for t in overrides if t not in specs]
    if unknown:
        raise TaskSpecError(
            f'{section}.task_metrics names {unknown}, which {SPECS_KEY} does not declare '
            f"(it has {list(specs)}). Correct the name, or set the task's metric as "
            f'{SPECS_KEY}.<task>.metric.'
        )
    metrics = {}
    for task in selection:
        metric = specs[task].get('metric')
        override = overrides.get(task)
        if metric is None and override is None:
            continue  # the task is trained, not scored
        metric = _merged(override, metric)
        if 'type' not in metric:
            raise TaskSpecError(
                f'{section}.task_metrics.{task} has no type: set '
                f'{SPECS_KEY}.{task}.metric=dict(type=...).'
            )
        if (
            tasks[task]['kind'] == 'segmentation'
            and metric.get('num_classes') is None
            and str(metric['type']).split('.')[-1] == 'SegmentationMetric'
        ):
            metric['num_classes'] = tasks[task]['channels']
        metrics[task] = metric
    return metrics


def apply_task_specs(cfg: Config) -> Config:
    """Derive ``model.tasks``, the dataloaders' ``dataset.tasks`` and the evaluators'
    ``task_metrics`` from ``cfg.task_specs`` and the selection ``cfg.tasks`` (in place; also
    returned). See the module docstring."""
    if SPECS_KEY not in cfg:
        return cfg
    specs = _check_specs(cfg.get(SPECS_KEY))
    selection = _selection(cfg, specs)
    model = cfg.get('model')
    if isinstance(model, Mapping):
        specs = _merge_overrides('model.tasks', model.get('tasks'), specs)
    tasks = _model_tasks(specs, selection, cfg)
    for loader in LOADERS:
        for dataset in _dataset_cfgs((cfg.get(loader) or {}).get('dataset')):
            # a loader's own tasks (e.g. --cfg-options to browse more of them) stand
            if dataset.get('tasks') is None:
                dataset['tasks'] = selection
    for section in EVALUATORS:
        evaluator = cfg.get(section)
        if isinstance(evaluator, Mapping) and (
            str(evaluator.get('type')).split('.')[-1] == 'MultiTaskMetric'
        ):
            evaluator['task_metrics'] = _task_metrics(
                section, evaluator, specs, selection, tasks
            )
    if isinstance(model, Mapping):
        model['tasks'] = tasks
    cfg.pop(SPECS_KEY)
    cfg.pop(SELECTION_KEY, None)
    return cfg
