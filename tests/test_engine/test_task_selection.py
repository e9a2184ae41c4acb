"""A config file is the whole truth: ``Config.fromfile`` gives the model, the datasets and the
evaluators their tasks, which the dataset base config declares once (``tasks`` +
``task_specs``) and derives in the file itself."""

import glob
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from ctal_mm.engine.config_checks import ConfigError, check_config
from ctal_mm.evaluation.metrics import SegmentationMetric
from ctal_mm.models import TaskSpecError, parse_task_spec
from ctal_mm.registry import MODELS
from ctal_mm.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(
    REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-4e_synthetic-96x128.py'
)
PASCAL_CTAL = osp.join(
    REPO, 'configs', 'ctal', 'ctal_swinv2s_1xb8-70e_pascal-context-512x512.py'
)
PASCAL_HPS = osp.join(
    REPO,
    'configs',
    'baselines',
    'hps_swinv2s_1xb8-70e_pascal-context-512x512.py',
)
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# the demo shrunk to seconds: 32x32 scenes, 2 of them, no worker processes
SMALL = """
model = dict(decoder=dict(affinity=dict(feature_size=(8, 8))))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(num_samples=2, img_size=(32, 32)))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(num_samples=2, img_size=(32, 32)))
test_dataloader = val_dataloader
"""
# docs/add_new_task.md, "Train on fewer tasks": the selection and what follows from it
DROP_NORMALS = """
tasks = ('semseg', 'depth')
model = dict(
    tasks=dict(_delete_=True, **{t: _base_.model.tasks[t] for t in tasks}))
train_dataloader = dict(dataset=dict(tasks=tasks))
val_dataloader = dict(dataset=dict(tasks=tasks))
test_dataloader = val_dataloader
val_evaluator = dict(task_metrics=dict(
    _delete_=True, **{t: _base_.val_evaluator.task_metrics[t] for t in tasks}))
test_evaluator = val_evaluator
"""


@pytest.fixture(autouse=True, scope='module')
def _registered():
    register_all_modules(init_default_scope=False)


def child_config(tmp_path, text, name='child'):
    """The demo shrunk (SMALL) and then ``text`` in a config inheriting it: its path."""
    small = tmp_path / 'small.py'
    small.write_text(f'_base_ = [{DEMO!r}]\n{SMALL}')
    path = tmp_path / f'{name}.py'
    path.write_text(f"_base_ = ['./small.py']\n{text}\n")
    return str(path)


def task_sets(cfg):
    """The tasks of the model, of each dataloader's dataset and of each evaluator."""
    return dict(
        model=list(cfg.model.tasks),
        **{loader: list(cfg[loader].dataset.tasks) for loader in LOADERS},
        val_evaluator=list(cfg.val_evaluator.task_metrics),
        test_evaluator=list(cfg.test_evaluator.task_metrics),
    )


def _one_iteration(cfg, work_dir):
    cfg.work_dir = str(work_dir)
    cfg.train_cfg = dict(by_epoch=False, max_iters=1, val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = None
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return cfg


def test_mmengines_runner_trains_and_tests_a_shipped_config_as_read(tmp_path):
    """The issue's user: Config.fromfile + mmengine's Runner.from_cfg, nothing else."""
    cfg = Config.fromfile(child_config(tmp_path, ''))
    assert 'runner_type' not in cfg  # mmengine's own Runner
    assert list(cfg.model.tasks) == ['semseg', 'depth', 'normals']
    assert cfg.model.data_preprocessor.type == 'MultiTaskDataPreProcessor'
    runner = Runner.from_cfg(_one_iteration(cfg, tmp_path / 'work'))
    assert type(runner) is Runner
    runner.train()
    assert runner.iter == 1
    metrics = runner.test()
    assert {'semseg/mIoU', 'depth/abs_err', 'normals/mean'} <= set(metrics)


def test_a_notebook_builds_the_model_from_config_fromfile():
    cfg = Config.fromfile(DEMO)
    model = MODELS.build(cfg.model)
    assert list(model.tasks) == ['semseg', 'depth', 'normals']
    assert model.tasks['semseg']['channels'] == 9  # the scenes' classes


SHIPPED = sorted(
    p
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p
)


@pytest.mark.parametrize(
    'path', SHIPPED, ids=[osp.relpath(p, REPO) for p in SHIPPED]
)
def test_every_shipped_config_as_read_builds_its_model_with_its_tasks(path):
    """Config.fromfile alone: the model, every loader and every evaluator get
    the selection the dataset base config declares."""
    cfg = Config.fromfile(path)
    selection = set(cfg.tasks)
    assert cfg.model.data_preprocessor.type == 'MultiTaskDataPreProcessor'
    for loader in LOADERS:
        assert set(cfg[loader].dataset.tasks) == selection, loader
    for evaluator in ('val_evaluator', 'test_evaluator'):
        assert set(cfg[evaluator].task_metrics) <= selection, evaluator
    # as Runner.from_cfg does: the config's default_scope for the nested builds
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    assert set(model.tasks) == selection


def test_dropping_a_task_in_a_child_config_trains(tmp_path):
    cfg = Config.fromfile(child_config(tmp_path, DROP_NORMALS))
    assert set(map(tuple, task_sets(cfg).values())) == {('semseg', 'depth')}
    check_config(cfg)
    runner = Runner.from_cfg(_one_iteration(cfg, tmp_path / 'work'))
    runner.train()
    assert list(runner.model.tasks) == ['semseg', 'depth']
    # CTAL's fusion conv has one 3x3xT kernel per position: T = 2 tasks
    assert runner.model.decoder.affinity.fusion.weight.shape[1] == 2
    metrics = runner.val_loop.run()
    assert {'semseg/mIoU', 'depth/abs_err'} <= set(metrics)
    assert not any(key.startswith('normals/') for key in metrics)


def test_a_selection_changed_alone_is_refused_before_training(tmp_path):
    """`tasks` changed in a child, nothing derived from it: refused, naming the fix."""
    cfg = Config.fromfile(
        child_config(tmp_path, "tasks = ('semseg', 'depth')")
    )
    assert list(cfg.model.tasks) == ['semseg', 'depth', 'normals']
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    problems = info.value.problems
    assert problems[0].startswith(
        "tasks=['semseg', 'depth'] but model.tasks has "
        "['semseg', 'depth', 'normals']."
    )
    assert any(
        p.startswith("tasks=['semseg', 'depth'] but train_dataloader")
        for p in problems
    )
    assert any(
        p.startswith("val_evaluator.task_metrics.normals scores 'normals'")
        for p in problems
    )
    assert all('docs/add_new_task.md' in p for p in problems)


def test_one_weight_changed_in_a_child_merges(tmp_path):
    cfg = Config.fromfile(
        child_config(
            tmp_path, 'model = dict(tasks=dict(semseg=dict(weight=2.0)))'
        )
    )
    assert cfg.model.tasks.semseg == dict(
        kind='segmentation',
        channels=9,
        loss=dict(type='MTCrossEntropyLoss'),
        weight=2.0,
    )
    assert cfg.model.tasks.depth.weight == 1.0
    assert list(cfg.model.tasks) == ['semseg', 'depth', 'normals']
    # and the command-line form of the same change
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict({'model.tasks.semseg.weight': 3.0})
    assert cfg.model.tasks.semseg.weight == 3.0


def test_pascal_ctal_weights_semseg_2_over_the_baselines_tasks():
    ctal, hps = Config.fromfile(PASCAL_CTAL), Config.fromfile(PASCAL_HPS)
    assert ctal.model.tasks.semseg.weight == 2.0
    assert hps.model.tasks.semseg.weight == 1.0
    for task in ('human_parts', 'saliency', 'normals', 'edge'):
        assert ctal.model.tasks[task] == hps.model.tasks[task]
    # the model keeps the reference's task order; data and metrics the selection's
    assert list(ctal.model.tasks) == [
        'semseg',
        'normals',
        'saliency',
        'edge',
        'human_parts',
    ]
    for section in LOADERS:
        assert list(ctal[section].dataset.tasks) == [
            'semseg',
            'human_parts',
            'saliency',
            'normals',
            'edge',
        ]
    assert ctal.model.tasks.human_parts.channels == 7
    assert ctal.val_evaluator.task_metrics.human_parts.num_classes == 7
    assert ctal.val_evaluator.task_metrics.edge.num_thresholds == 33
    assert ctal.test_evaluator.task_metrics.edge.num_thresholds == 99


def test_a_class_count_changed_in_one_place_is_refused():
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict({'train_dataloader.dataset.num_classes': 5})
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    (problem,) = info.value.problems
    assert problem.startswith(
        'model.tasks.semseg.channels=9 but train_dataloader.dataset'
    )
    assert 'Set model.tasks.semseg.channels=5' in problem


@pytest.mark.parametrize(
    'tasks,expected',
    [
        (None, 'model.tasks is not set.'),
        (
            dict(albedo=dict(channels=3)),
            "model.tasks.albedo: Task 'albedo' has no kind",
        ),
        (
            dict(depth=dict(kind='dpeth', channels=1)),
            "unknown kind 'dpeth'",
        ),
        (
            dict(depth=dict(channel=1)),
            "model.tasks.depth has unknown field(s) ['channel']",
        ),
        (
            dict(normals=dict(channels=1)),
            'model.tasks.normals.channels=1; a normals head predicts 3',
        ),
        (
            dict(semseg=dict()),
            "model.tasks.semseg needs 'channels'",
        ),
    ],
)
def test_one_validator_names_the_key_and_the_fix(tasks, expected):
    with pytest.raises(TaskSpecError) as info:
        parse_task_spec(tasks)
    assert expected in str(info.value), str(info.value)


def test_every_problem_of_a_task_set_is_listed_at_once():
    with pytest.raises(TaskSpecError) as info:
        parse_task_spec(
            dict(
                depth=dict(channels=2),
                normals=dict(channels=3, metric=dict(type='NormalsMetric')),
            )
        )
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith('model.tasks.depth.channels=2')
    assert lines[1].startswith(
        "model.tasks.normals has unknown field(s) ['metric']"
    )


def test_the_kind_comes_from_the_name_for_the_reference_tasks():
    spec = parse_task_spec(dict(depth=dict(channels=1)))
    assert spec['depth'] == dict(
        channels=1,
        kind='depth',
        loss=spec['depth']['loss'],
        weight=1.0,
    )
    assert spec['depth']['loss']['type'] == 'MaskedL1DepthLoss'


def test_segmentation_metric_counts_the_dataset_classes():
    metric = SegmentationMetric(task='human_parts')
    metric.dataset_meta = dict(human_parts_classes=('bg', 'head', 'arm'))
    assert metric.num_classes == 3
    gt = np.array([[0, 1], [2, 2]])
    assert metric.image_statistics(gt, gt).shape == (3, 3)
    with pytest.raises(ValueError, match="no 'classes' to count"):
        SegmentationMetric(task='semseg').num_classes
    assert SegmentationMetric(num_classes=6).num_classes == 6
