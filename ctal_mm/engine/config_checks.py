"""Config checks run before training starts; each problem names its config key and the fix.

:func:`check_config` needs only the config (tools/train.py runs it before building anything);
:func:`check_runner` also probes the built model with one real sample of each built dataloader
(ConfigCheckHook runs it in ``before_run``, so Python-API users get it too). Both collect every
problem and raise one :class:`ConfigError` listing them all:

* unknown registry types, with the registered names closest to them;
* ``model.tasks`` against the datasets: tasks they do not provide, kinds they store differently,
  class counts that disagree with their METAINFO, channel counts a kind cannot have;
* losses and metrics that do not fit their task's kind (a depth loss on a segmentation task:
  the kinds each loss and metric class declares in ``ACCEPTED_KINDS``; classes without it, e.g.
  mmseg's losses, are not checked), metrics for tasks the model does not predict,
  ``num_classes`` of segmentation metrics;
* (runner only) input sizes the CTAL affinity module was not built for, in training and in
  validation, found by running the backbone on one sample of each loader.
"""

import difflib
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import FUNCTIONS, Registry

from ctal_mm.registry import (
    AGGREGATORS,
    DATA_SAMPLERS,
    DATASETS,
    EVALUATOR,
    HOOKS,
    LOG_PROCESSORS,
    LOOPS,
    METRICS,
    MODEL_WRAPPERS,
    MODELS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
    PARAM_SCHEDULERS,
    TRANSFORMS,
    VISBACKENDS,
    VISUALIZERS,
    WEIGHT_INITIALIZERS,
)
from ctal_mm.structures import class_meta_key, class_names, task_kind
from ctal_mm.utils.misc import few

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


class ConfigError(ValueError):
    """The config has problems that would stop (or silently spoil) training.

    Attributes:
        problems: one message per problem, each naming the config key and the fix.
    """

    def __init__(self, problems: List[str], source: Optional[str] = None):
        self.problems = list(problems)
        where = f' ({source})' if source else ''
        lines = [f'{len(self.problems)} problem(s) in the config{where}:']
        lines += [f'  {i}. {p}' for i, p in enumerate(self.problems, 1)]
        super().__init__('\n'.join(lines))


# --------------------------------------------------------------------- registry types
def _names(registry: Registry) -> List[str]:
    names = []
    while registry is not None:
        names.extend(registry.module_dict)
        registry = registry.parent
    return sorted(set(names))


def close_names(registry: Registry, name: str, count: int = 5) -> List[str]:
    """The registered names (this registry and its parents) closest to ``name``."""
    candidates = _names(registry)
    if '.' in name:  # 'mmpretrain.SwinTransformerV2': look in that scope too
        scope = name.split('.', 1)[0]
        child = registry._get_root_registry()._search_child(scope)
        if child is not None:
            candidates += [f'{scope}.{n}' for n in child.module_dict]
    lower = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(
        name.lower(), list(lower), n=count, cutoff=0.6
    )
    return [lower[m] for m in matches]


def _lookup(registry: Registry, name: str):
    try:
        return registry.get(name)
    except Exception:  # e.g. a scope whose package is not installed
        return None


def _component_class(registry: Registry, type_):
    if isinstance(type_, type):
        return type_
    return _lookup(registry, type_) if isinstance(type_, str) else None


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


def _use(suited: List[str], what: str, kind: str) -> str:
    if suited:
        return f'Use {" or ".join(suited)}'
    return (
        f'No registered {what} accepts kind {kind!r}: register one whose '
        f"ACCEPTED_KINDS includes '{kind}'"
    )


def unknown_type_message(registry: Registry, key: str, name: str) -> str:
    """What to say about ``key: type=name`` that ``registry`` does not know."""
    close = close_names(registry, name)
    hint = (
        f' Did you mean {", ".join(repr(c) for c in close)}?' if close else ''
    )
    return (
        f'{key}: type={name!r} is not a registered {registry.name} '
        "(searched scope 'ctal_mm' and its parents mmseg, mmengine)."
        f'{hint} Correct the type, or import the module that registers it '
        "with custom_imports=dict(imports=['my_package.my_module'])."
    )


# A rule maps the name of a nested entry to (registry, rule) of what it builds, or None when
# it holds arguments rather than a component.
Rule = Callable[[str], Optional[Tuple[Registry, 'Rule']]]


def _leaf(name: str):
    return None


def _same(registry: Registry) -> Rule:
    def rule(name: str):
        return registry, rule

    return rule


def _model_rule(name: str):
    if name == 'init_cfg':
        return WEIGHT_INITIALIZERS, _leaf
    if name == 'aggregator':  # torchjd's, by class name
        return AGGREGATORS, _leaf
    return MODELS, _model_rule


def _dataset_rule(name: str):
    if name == 'pipeline':
        return TRANSFORMS, _same(TRANSFORMS)
    if name in ('dataset', 'datasets'):
        return DATASETS, _dataset_rule
    return None


def _loader_rule(name: str):
    if name == 'dataset':
        return DATASETS, _dataset_rule
    if name in ('sampler', 'batch_sampler'):
        return DATA_SAMPLERS, _leaf
    if name in ('collate_fn', 'worker_init_fn'):
        return FUNCTIONS, _leaf
    return None


def _optim_rule(name: str):
    return (OPTIMIZERS, _leaf) if name == 'optimizer' else None


def _visualizer_rule(name: str):
    return (VISBACKENDS, _leaf) if name == 'vis_backends' else None


def _hooks_rule(name: str):
    return HOOKS, _leaf


SECTIONS: Dict[str, Tuple[Optional[Registry], Rule]] = {
    'model': (MODELS, _model_rule),
    'train_dataloader': (None, _loader_rule),
    'val_dataloader': (None, _loader_rule),
    'test_dataloader': (None, _loader_rule),
    'val_evaluator': (METRICS, _same(METRICS)),
    'test_evaluator': (METRICS, _same(METRICS)),
    'optim_wrapper': (OPTIM_WRAPPERS, _optim_rule),
    'param_scheduler': (PARAM_SCHEDULERS, _leaf),
    'default_hooks': (None, _hooks_rule),
    'custom_hooks': (HOOKS, _leaf),
    'train_cfg': (LOOPS, _leaf),
    'val_cfg': (LOOPS, _leaf),
    'test_cfg': (LOOPS, _leaf),
    'visualizer': (VISUALIZERS, _visualizer_rule),
    'log_processor': (LOG_PROCESSORS, _leaf),
    'model_wrapper_cfg': (MODEL_WRAPPERS, _leaf),
}


def _check_types(
    node, registry: Optional[Registry], key: str, rule: Rule
) -> Iterator[str]:
    if isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from _check_types(item, registry, f'{key}[{i}]', rule)
        return
    if not isinstance(node, Mapping):
        return
    type_name = node.get('type')
    if registry is not None and isinstance(type_name, str):
        if type_name == 'Evaluator' and registry is METRICS:
            registry = EVALUATOR
        if _lookup(registry, type_name) is None:
            yield unknown_type_message(registry, f'{key}.type', type_name)
    for name, child in node.items():
        nested = (
            (METRICS, _same(METRICS))
            if registry is EVALUATOR and name == 'metrics'
            else rule(name)
        )
        if name != 'type' and nested is not None:
            yield from _check_types(
                child, nested[0], f'{key}.{name}', nested[1]
            )


def check_registry_types(cfg: Config) -> List[str]:
    """Every ``type=`` the Runner will build, resolved in its registry (ctal_mm's scope).

    Configs with another ``default_scope`` resolve names elsewhere: not checked.
    """
    problems = []
    if cfg.get('default_scope', 'ctal_mm') not in (None, 'ctal_mm'):
        return problems
    for section, (registry, rule) in SECTIONS.items():
        if cfg.get(section) is not None:
            problems.extend(
                _check_types(cfg[section], registry, section, rule)
            )
    wrapper = cfg.get('optim_wrapper')
    constructor = (
        wrapper.get('constructor') if isinstance(wrapper, Mapping) else None
    )
    if isinstance(constructor, str):
        if _lookup(OPTIM_WRAPPER_CONSTRUCTORS, constructor) is None:
            problems.append(
                unknown_type_message(
                    OPTIM_WRAPPER_CONSTRUCTORS,
                    'optim_wrapper.constructor',
                    constructor,
                )
            )
    return problems


# --------------------------------------------------------------------- tasks and data
def _dataset_cfg(cfg: Config, loader: str) -> Optional[dict]:
    node = cfg.get(loader)
    if not isinstance(node, Mapping):
        return None
    dataset = node.get('dataset')
    return dataset if isinstance(dataset, Mapping) else None


def _innermost(dataset_cfg: Mapping) -> Mapping:
    # dataset wrappers (RepeatDataset, ClassBalancedDataset) hold the dataset in 'dataset'
    while isinstance(dataset_cfg.get('dataset'), Mapping):
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def build_dataset_meta(cfg: Config, loader: str) -> Optional[dict]:
    """The metainfo of ``cfg[loader].dataset``, built without reading its files (lazy_init).

    None when the config has no such dataset, it is not a ctal_mm multitask dataset, or it
    cannot be built now (the Runner will report why).
    """
    dataset_cfg = _dataset_cfg(cfg, loader)
    if dataset_cfg is None:
        return None
    inner = dict(_innermost(dataset_cfg))
    dataset_cls = _lookup(DATASETS, inner.get('type', ''))
    if dataset_cls is None or 'tasks' not in getattr(
        dataset_cls, 'METAINFO', {}
    ):
        return None
    inner['lazy_init'] = True
    inner['pipeline'] = []  # the pipeline plays no part in the metainfo
    try:
        dataset = DATASETS.build(inner)
    except Exception:
        return None
    return dict(dataset.metainfo, _type=inner['type'])


def check_tasks(spec: Mapping, meta: Mapping, loader: str) -> List[str]:
    """``model.tasks`` (parsed) against the metainfo of ``loader``'s dataset."""
    problems = []
    key = f'{loader}.dataset'
    provided = list(meta.get('tasks', ()))
    kinds = meta.get('task_kinds', {})
    dataset = meta.get('_type')
    for task, task_cfg in spec.items():
        if task not in provided:
            dataset_cls = _lookup(DATASETS, dataset) if dataset else None
            offered = getattr(dataset_cls, 'METAINFO', {}).get('tasks', ())
            fix = (
                f"Add '{task}' to {key}.tasks ({dataset} has it)"
                if task in offered
                else f"{dataset} has no '{task}' (it has {list(offered)}): "
                'use a dataset that has it'
            )
            problems.append(
                f'model.tasks.{task}: {key} ({dataset}) does not provide task '
                f"'{task}'; it loads {provided}. {fix}, or remove "
                f'model.tasks.{task} (and its metric).'
            )
            continue
        if kinds.get(task) not in (None, task_cfg['kind']):
            problems.append(
                f"model.tasks.{task}.kind='{task_cfg['kind']}' but {key} "
                f"({dataset}) stores '{task}' as kind '{kinds[task]}'. Set "
                f"model.tasks.{task}.kind='{kinds[task]}'."
            )
            continue
        channels = task_cfg['channels']
        if task_kind(task_cfg['kind']).has_classes:
            classes = class_names(meta, task)
            if classes is not None and channels != len(classes):
                problems.append(
                    f'model.tasks.{task}.channels={channels} but {key} '
                    f'({dataset}) has {len(classes)} {task} classes '
                    f"(METAINFO['{class_meta_key(meta, task, 'classes')}']: "
                    f'{few(classes)}). Set model.tasks.{task}.channels='
                    f'{len(classes)}, or choose the dataset whose classes you '
                    'mean.'
                )
    return problems


def check_kinds(spec: Mapping) -> List[str]:
    """Channels, and losses for a task kind that does not fit them."""
    problems = []
    for task, task_cfg in spec.items():
        kind = task_cfg['kind']
        allowed = task_kind(kind).head_channels
        if allowed is not None and task_cfg['channels'] not in allowed:
            problems.append(
                f'model.tasks.{task}.channels={task_cfg["channels"]}; a {kind} '
                f'head predicts {" or ".join(map(str, allowed))} channel(s). '
                f'Set model.tasks.{task}.channels={allowed[-1]}.'
            )
        loss = task_cfg.get('loss') or {}
        loss_type = loss.get('type') if isinstance(loss, Mapping) else None
        fits = accepted_kinds(MODELS, loss_type)
        if fits is not None and kind not in fits:
            suited = types_accepting(MODELS, kind)
            problems.append(
                f'model.tasks.{task}.loss: {loss_type} is a loss for '
                f"{' / '.join(fits)} tasks, but '{task}' is a {kind} task. "
                f'{_use(suited, "loss", kind)} (or set model.tasks.{task}.kind).'
            )
    return problems


def _task_metrics(evaluator) -> Iterator[Tuple[str, str, Mapping]]:
    """(key, task, metric cfg) of every per-task metric in an evaluator config."""
    if isinstance(evaluator, (list, tuple)):
        for i, item in enumerate(evaluator):
            for key, task, metric in _task_metrics(item):
                yield key.replace('@', f'[{i}]', 1), task, metric
        return
    if not isinstance(evaluator, Mapping):
        return
    if evaluator.get('type') == 'Evaluator':
        yield from _task_metrics(evaluator.get('metrics'))
        return
    for task, metric in (evaluator.get('task_metrics') or {}).items():
        if isinstance(metric, Mapping):
            yield f'@.task_metrics.{task}', task, metric
    if accepted_kinds(METRICS, evaluator.get('type')) is not None:
        task = evaluator.get('task')
        if task is not None:
            yield '@', task, evaluator


def check_metrics(cfg: Config, spec: Mapping, metas: Mapping) -> List[str]:
    """Per-task metrics: predicted tasks only, fitting kinds, class counts."""
    problems = []
    for section in ('val_evaluator', 'test_evaluator'):
        loader = section.replace('evaluator', 'dataloader')
        meta = metas.get(loader) or {}
        for key, task, metric in _task_metrics(cfg.get(section)):
            key = key.replace('@', section, 1)
            metric_type = str(metric.get('type')).split('.')[-1]
            if task not in spec:
                problems.append(
                    f"{key}: the model does not predict '{task}' (model.tasks: "
                    f'{list(spec)}). Remove this metric or add the task to '
                    'model.tasks.'
                )
                continue
            kind = spec[task]['kind']
            fits = accepted_kinds(METRICS, metric.get('type'))
            if fits is not None and kind not in fits:
                suited = types_accepting(METRICS, kind)
                problems.append(
                    f'{key}: {metric_type} scores {" / ".join(fits)} tasks, but '
                    f"'{task}' is a {kind} task. {_use(suited, 'metric', kind)}."
                )
                continue
            classes = class_names(meta, task)
            # without num_classes the metric counts the dataset's classes
            if (
                metric_type == 'SegmentationMetric'
                and classes is not None
                and metric.get('num_classes') is not None
                and metric['num_classes'] != len(classes)
            ):
                problems.append(
                    f'{key}.num_classes={metric["num_classes"]} but '
                    f'{loader}.dataset has {len(classes)} {task} classes. Set '
                    f'{key}.num_classes={len(classes)}.'
                )
    return problems


def task_spec_problems(cfg: Config) -> Tuple[Optional[Mapping], List[str]]:
    """``model.tasks`` parsed as the model will parse it, or the reason it cannot be."""
    from ctal_mm.models.multitask_model import parse_task_spec

    model = cfg.get('model')
    if not isinstance(model, Mapping) or 'tasks' not in model:
        return None, []
    try:
        return parse_task_spec(model['tasks']), []
    except (KeyError, ValueError) as error:
        message = error.args[0] if error.args else str(error)
        return None, [f'model.tasks: {message}']


def _static_problems(cfg: Config, metas: Mapping) -> List[str]:
    problems = check_registry_types(cfg)
    if problems:  # the checks below build datasets: their types must exist
        return problems
    spec, problems = task_spec_problems(cfg)
    if spec is None:
        return problems
    problems += check_kinds(spec)
    for loader, meta in metas.items():
        if meta is not None:
            problems += check_tasks(spec, meta, loader)
    problems += check_metrics(cfg, spec, metas)
    return problems


def check_config(
    cfg: Config,
    loaders: Tuple[str, ...] = ('train_dataloader', 'val_dataloader'),
) -> None:
    """Check ``cfg`` without building the model or reading data files.

    Args:
        cfg: the merged config (after ``--cfg-options``).
        loaders: the dataloaders whose datasets the run will use.

    Raises:
        ConfigError: listing every problem found.
    """
    problems = check_registry_types(cfg)
    if problems:  # building the datasets needs their types
        raise ConfigError(problems, cfg.filename)
    metas = {loader: build_dataset_meta(cfg, loader) for loader in loaders}
    problems = _static_problems(cfg, metas)
    if problems:
        raise ConfigError(problems, cfg.filename)


# --------------------------------------------------------------------- input size probe
def probe_input_size(
    model: torch.nn.Module,
    dataloader,
    loader: str,
    training: bool,
    evaluating: bool = False,
) -> List[str]:
    """Run one sample of ``dataloader`` through the data preprocessor; report an
    input size the model does not accept (``model.fixed_input_size()``).

    ``evaluating``: the model's weights come from a checkpoint (tools/test.py), so the fix
    is to bring the inputs to the model's size, not to build another model."""
    from mmengine.model import BaseTTAModel

    from ctal_mm.models import MultiTaskEncoderDecoder

    # a test-time augmentation wrapper prepares the batch, its module predicts
    network = model.module if isinstance(model, BaseTTAModel) else model
    if not isinstance(network, MultiTaskEncoderDecoder):
        return []
    need = network.fixed_input_size()
    if need is None:
        return []
    batch = dataloader.collate_fn([dataloader.dataset[0]])
    with torch.no_grad():
        inputs = model.data_preprocessor(batch, training)['inputs']
    if tuple(inputs.shape[-2:]) == need:
        return []
    return [_size_problem(network, inputs, loader, evaluating)]


def _size_problem(model, inputs, loader, evaluating=False) -> str:
    name = f'decoder.{model.decoder.fixed_size_module}'
    feature_size = model.decoder.fixed_feature_size()
    stride_h, stride_w = model.feature_stride()
    H, W = inputs.shape[-2:]
    h, w = round(H / stride_h), round(W / stride_w)
    need = model.fixed_input_size()
    if evaluating:
        # a checkpoint's CTAL weights are tied to its feature size: another size would
        # make the checkpoint not fit, so the inputs must change
        return (
            f'{loader} gives {H}x{W} inputs (after the data preprocessor), but '
            f'the model was built, and its checkpoint trained, for '
            f'{need[0]}x{need[1]} inputs (model.{name}.feature_size='
            f'{feature_size} at stride {stride_h:g}). Resize or pad '
            f'the inputs to {need[0]}x{need[1]}: a Resize / Pad to that size in '
            f'{loader}.dataset.pipeline, or model.data_preprocessor.size='
            f'({need[0]}, {need[1]}) to pad them. Do not change feature_size: '
            'the checkpoint would no longer fit the model.'
        )
    return (
        f'model.{name}.feature_size={feature_size} but '
        f'{loader} gives {H}x{W} inputs (after the data preprocessor), '
        f'which the model turns into {h}x{w} features (stride '
        f'{stride_h:g}). Set model.{name}.feature_size=({h}, {w}), or make '
        f'{loader}.dataset.pipeline (crop / pad size) and model.data_preprocessor '
        f'(size) give {need[0]}x{need[1]} inputs.'
    )


def _built_loaders(runner) -> Dict[str, object]:
    # the loops the current runner.train()/val()/test() has built; building others (through
    # the runner's properties) would read data the run does not use
    from mmengine.runner import BaseLoop

    loaders = {}
    for loader, attr in (
        ('train_dataloader', '_train_loop'),
        ('val_dataloader', '_val_loop'),
        ('test_dataloader', '_test_loop'),
    ):
        loop = getattr(runner, attr, None)
        if isinstance(loop, BaseLoop):
            loaders[loader] = loop.dataloader
    return loaders


def _warn_split_overlap(runner, loaders) -> None:
    from ctal_mm.datasets.split_checks import (
        split_overlap,
        split_overlap_message,
    )

    if 'train_dataloader' not in loaders or 'val_dataloader' not in loaders:
        return
    train = loaders['train_dataloader'].dataset
    val = loaders['val_dataloader'].dataset
    shared = split_overlap(train, val)
    if shared:
        runner.logger.warning(
            split_overlap_message(shared, _describe(train), _describe(val))
        )


def _describe(dataset) -> str:
    split = getattr(dataset, 'split', None)
    name = type(dataset).__name__
    return f'{name}, split {split!r}' if split is not None else name


def check_runner(runner, probe_sizes: bool = True) -> None:
    """:func:`check_config` on ``runner.cfg`` with the built datasets, plus the input-size
    probe of the built model.

    Raises:
        ConfigError: listing every problem found.
    """
    from mmengine.model import is_model_wrapper

    cfg = runner.cfg
    loaders = _built_loaders(runner)
    metas = {}
    for loader, dataloader in loaders.items():
        meta = getattr(dataloader.dataset, 'metainfo', None)
        if meta is not None and 'tasks' in meta:
            metas[loader] = dict(meta, _type=type(dataloader.dataset).__name__)
    problems = _static_problems(cfg, metas)
    _warn_split_overlap(runner, loaders)
    if not problems and probe_sizes:
        evaluating = 'train_dataloader' not in loaders
        model = (
            runner.model.module
            if is_model_wrapper(runner.model)
            else runner.model
        )
        for loader, dataloader in loaders.items():
            problems += probe_input_size(
                model,
                dataloader,
                loader,
                training=loader == 'train_dataloader',
                evaluating=evaluating,
            )
    if problems:
        raise ConfigError(problems, cfg.filename)


__all__ = [
    'ConfigError',
    'check_config',
    'check_runner',
    'check_registry_types',
    'close_names',
    'unknown_type_message',
]
