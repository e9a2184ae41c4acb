"""Config checks run before training starts; each problem names its config key and the fix.

:func:`check_config` needs only the config (tools/train.py runs it before building anything);
:func:`check_runner` also probes the built model with one real sample of each built dataloader
(ConfigCheckHook runs it in ``before_run``, so Python-API users get it too). Both collect every
problem and raise one :class:`ConfigError` listing them all:

* ``model.tasks`` as the model parses it (:mod:`ctal_mm.models.task_spec`), and against the
  selection ``tasks`` the dataset base config derived it from;
* ``model.tasks`` against the datasets: tasks they do not provide, kinds they store differently,
  class counts that disagree with their METAINFO, channel counts a kind cannot have;
* losses and metrics that do not fit their task's kind (a depth loss on a segmentation task:
  the kinds each loss and metric class declares in ``ACCEPTED_KINDS``; classes without it, e.g.
  mmseg's losses, are not checked), metrics for tasks the model does not predict,
  ``num_classes`` of segmentation metrics;
* (runner only) input sizes the CTAL affinity module was not built for, in training and in
  validation, found by running the backbone on one sample of each loader.
"""

from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import torch
from mmengine.config import Config

from ctal_mm.datasets import dataset_metainfo
from ctal_mm.models.task_spec import (
    accepted_kinds,
    suggestion,
    task_spec_problems,
    types_accepting,
)
from ctal_mm.registry import DATASETS, METRICS
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


# --------------------------------------------------------------------- tasks and data
def _dataset_cfgs(dataset) -> List[Mapping]:
    """The dataset configs a dataloader's ``dataset`` holds (inside wrappers too)."""
    if not isinstance(dataset, Mapping):
        return []
    if 'datasets' in dataset:  # ConcatDataset
        return [d for sub in dataset['datasets'] for d in _dataset_cfgs(sub)]
    if 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset
        return _dataset_cfgs(dataset['dataset'])
    return [dataset]


def check_selection(cfg: Config, spec: Mapping) -> List[str]:
    """The selection ``tasks`` against what the model, the loaders and the evaluators got.

    A dataset base config derives ``model_tasks``, the loaders' ``dataset.tasks`` and the
    evaluators' ``task_metrics`` from its ``tasks``; a child config that sets ``tasks`` again
    changes none of them. Refused here rather than trained with the old task set.
    """
    selection = cfg.get('tasks')
    if not isinstance(selection, (list, tuple)):
        return []
    selection = list(selection)
    how = (
        "A config that changes the selection writes model.tasks, the loaders' "
        "dataset.tasks and the evaluators' task_metrics for it "
        '(docs/add_new_task.md, "Train on fewer tasks").'
    )
    problems = []
    if set(spec) != set(selection):
        problems.append(
            f'tasks={selection} but model.tasks has {list(spec)}. {how}'
        )
    for loader in LOADERS:
        node = cfg.get(loader)
        if not isinstance(node, Mapping):
            continue
        for dataset in _dataset_cfgs(node.get('dataset')):
            loaded = dataset.get('tasks')
            if loaded is not None and set(loaded) != set(selection):
                problems.append(
                    f'tasks={selection} but {loader}.dataset.tasks='
                    f'{list(loaded)}. {how}'
                )
    for section in ('val_evaluator', 'test_evaluator'):
        for key, task, _ in _task_metrics(cfg.get(section)):
            if task not in selection:
                problems.append(
                    f"{key.replace('@', section, 1)} scores '{task}', which "
                    f'tasks={selection} does not select. {how}'
                )
    return problems


def check_tasks(spec: Mapping, meta: Mapping, loader: str) -> List[str]:
    """``model.tasks`` (parsed) against the metainfo of ``loader``'s dataset."""
    problems = []
    key = f'{loader}.dataset'
    provided = list(meta.get('tasks', ()))
    kinds = meta.get('task_kinds', {})
    dataset = meta.get('_type')
    for task, task_cfg in spec.items():
        if task not in provided:
            dataset_cls = DATASETS.get(dataset) if dataset else None
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
                metric_type = str(metric.get('type')).split('.')[-1]
                problems.append(
                    f'{key}: {metric_type} scores {" / ".join(fits)} tasks, but '
                    f"'{task}' is a {kind} task. "
                    f'{suggestion(suited, "metric", kind)}.'
                )
                continue
            classes = class_names(meta, task)
            # a class-count argument of a metric of a task with classes must agree with
            # the dataset (without one the metric counts the dataset's classes)
            num_classes = metric.get('num_classes')
            if (
                task_kind(kind).has_classes
                and classes is not None
                and num_classes is not None
                and num_classes != len(classes)
            ):
                problems.append(
                    f'{key}.num_classes={num_classes} but '
                    f'{loader}.dataset has {len(classes)} {task} classes. Set '
                    f'{key}.num_classes={len(classes)}.'
                )
    return problems


def _static_problems(cfg: Config, metas: Mapping) -> List[str]:
    model = cfg.get('model')
    while isinstance(model, Mapping) and isinstance(
        model.get('module'), Mapping
    ):
        model = model['module']  # a test-time-augmentation wrapper
    if not isinstance(model, Mapping):
        return []
    spec, problems = task_spec_problems(model.get('tasks'))
    spec = {task: cfg for task, cfg in spec.items() if 'kind' in cfg}
    if not spec:
        return problems
    problems += check_selection(cfg, spec)
    for loader, meta in metas.items():
        if meta is not None:
            problems += check_tasks(spec, meta, loader)
    problems += check_metrics(cfg, spec, metas)
    return problems


def _dataset_meta(
    cfg: Config, loader: str
) -> Tuple[Optional[dict], List[str]]:
    """The metainfo of ``loader``'s dataset, or the problem its arguments have."""
    dataset = (cfg.get(loader) or {}).get('dataset')
    try:
        meta = dataset_metainfo(dataset, strict=True)
    except ValueError as error:
        return None, [f'{loader}.dataset: {error}']
    if meta is None:
        return None, []
    return dict(meta, _type=_dataset_cfgs(dataset)[0].get('type')), []


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
    metas, problems = {}, []
    for loader in loaders:
        metas[loader], dataset_problems = _dataset_meta(cfg, loader)
        problems += dataset_problems
    problems += _static_problems(cfg, metas)
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


__all__ = ['ConfigError', 'check_config', 'check_runner']
