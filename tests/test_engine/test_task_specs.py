"""A dataset's task set is declared once (``tasks`` + ``task_specs`` in its base config) and
derived into the model, the datasets and the evaluators when the config is loaded."""

import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from ctal_mm.engine.config_loading import load_config, resolve_config
from ctal_mm.engine.task_specs import TaskSpecError, apply_task_specs
from ctal_mm.evaluation.metrics import SegmentationMetric
from ctal_mm.registry import RUNNERS
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


@pytest.fixture(autouse=True, scope='module')
def _registered():
    register_all_modules(init_default_scope=False)


def child_config(tmp_path, text, small=True):
    """A config inheriting the demo with ``text`` (and the small sizes) added: its path."""
    path = tmp_path / 'child.py'
    path.write_text(f'_base_ = [{DEMO!r}]\n{SMALL if small else ""}{text}\n')
    return str(path)


def task_sets(cfg):
    """The tasks of the model, of each dataloader's dataset and of each evaluator."""
    return dict(
        model=list(cfg.model.tasks),
        **{loader: list(cfg[loader].dataset.tasks) for loader in LOADERS},
        val_evaluator=list(cfg.val_evaluator.task_metrics),
        test_evaluator=list(cfg.test_evaluator.task_metrics),
    )


def test_dropping_a_task_is_one_edit_and_trains(tmp_path):
    cfg = load_config(child_config(tmp_path, "tasks = ('semseg', 'depth')"))
    assert set(map(tuple, task_sets(cfg).values())) == {('semseg', 'depth')}
    assert 'task_specs' not in cfg and 'tasks' not in cfg  # resolved
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg = dict(by_epoch=False, max_iters=1, val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.visualization.interval = 0
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    assert set(runner.model.tasks) == {'semseg', 'depth'}
    # CTAL's fusion conv has one 3x3xT kernel per position: T = 2 tasks
    assert runner.model.decoder.affinity.fusion.weight.shape[1] == 2
    metrics = runner.val_loop.run()
    assert {'semseg/mIoU', 'depth/abs_err'} <= set(metrics)
    assert not any(key.startswith('normals/') for key in metrics)


def test_the_runner_resolves_a_config_read_with_config_fromfile(tmp_path):
    path = child_config(tmp_path, "tasks = ('semseg', 'depth')")
    cfg = Config.fromfile(path)
    assert 'task_specs' in cfg and cfg.model.get('tasks') is None
    cfg.work_dir = str(tmp_path / 'work')
    runner = RUNNERS.build(cfg)
    assert type(runner).__name__ == 'MultiTaskRunner'
    assert list(runner.model.tasks) == ['semseg', 'depth']
    assert runner.cfg.model.tasks == load_config(path).model.tasks
    assert list(runner.cfg.val_evaluator.task_metrics) == ['semseg', 'depth']


def test_adding_a_task_the_dataset_declares(tmp_path):
    cfg = load_config(
        child_config(
            tmp_path,
            "tasks = ('semseg', 'depth', 'normals', 'edge')\n"
            'task_specs = dict(edge=dict(weight=50.0))',
        )
    )
    expected = ('semseg', 'depth', 'normals', 'edge')
    assert set(map(tuple, task_sets(cfg).values())) == {expected}
    assert cfg.model.tasks.edge == dict(
        kind='edge',
        channels=1,
        loss=dict(type='BalancedBCEEdgeLoss', pos_weight=0.95),
        weight=50.0,
    )
    assert cfg.val_evaluator.task_metrics.edge == dict(type='EdgeMetric')


def test_a_child_override_of_one_weight_merges(tmp_path):
    cfg = load_config(
        child_config(tmp_path, 'task_specs = dict(semseg=dict(weight=2.0))')
    )
    assert cfg.model.tasks.semseg == dict(
        kind='segmentation',
        channels=9,  # the scenes' classes
        loss=dict(type='MTCrossEntropyLoss'),
        weight=2.0,
    )
    assert cfg.model.tasks.depth.weight == 1.0
    assert list(cfg.model.tasks) == ['semseg', 'depth', 'normals']
    assert cfg.val_evaluator.task_metrics.semseg == dict(
        type='SegmentationMetric', num_classes=9
    )


def test_pascal_ctal_weights_semseg_2_over_the_baselines_specs():
    ctal, hps = load_config(PASCAL_CTAL), load_config(PASCAL_HPS)
    assert ctal.model.tasks.semseg.weight == 2.0
    assert hps.model.tasks.semseg.weight == 1.0
    for task in ('human_parts', 'saliency', 'normals', 'edge'):
        assert ctal.model.tasks[task] == hps.model.tasks[task]
    # the model keeps the reference's task order; data and metrics the dataset's
    assert list(ctal.model.tasks) == [
        'semseg',
        'normals',
        'saliency',
        'edge',
        'human_parts',
    ]
    assert list(ctal.train_dataloader.dataset.tasks) == [
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


def test_the_selection_and_channels_from_cfg_options():
    cfg = load_config(
        DEMO,
        {
            'tasks': ('depth', 'semseg'),
            'train_dataloader.dataset.num_classes': 5,
        },
    )
    # the model follows task_specs' order, data and metrics the selection's
    assert list(cfg.model.tasks) == ['semseg', 'depth']
    assert list(cfg.train_dataloader.dataset.tasks) == ['depth', 'semseg']
    assert cfg.model.tasks.semseg.channels == 5
    assert cfg.val_evaluator.task_metrics.semseg.num_classes == 5
    # the command-line form of a one-task change
    cfg = load_config(DEMO, {'model.tasks.semseg.weight': 3.0})
    assert cfg.model.tasks.semseg.weight == 3.0
    assert cfg.model.tasks.semseg.kind == 'segmentation'


def test_an_unknown_task_in_the_selection_names_the_key_and_the_fix(tmp_path):
    path = child_config(tmp_path, "tasks = ('semseg', 'normal')")
    with pytest.raises(TaskSpecError) as info:
        load_config(path)
    message = str(info.value)
    assert "tasks=['semseg', 'normal'] names ['normal']" in message
    assert "task_specs does not declare (it has ['semseg', 'depth'" in message
    assert (
        'Correct the name' in message and 'task_specs=dict(normal=' in message
    )


def test_a_task_spec_without_kind_names_the_key_and_the_fix(tmp_path):
    path = child_config(
        tmp_path,
        "tasks = ('semseg', 'albedo')\n"
        'task_specs = dict(albedo=dict(channels=3, metric=None))',
    )
    with pytest.raises(
        TaskSpecError, match="task_specs.albedo has no 'kind'"
    ) as info:
        load_config(path)
    assert 'Set task_specs.albedo.kind to one of' in str(info.value)
    assert "'normals'" in str(info.value)


def test_other_bad_entries_name_their_key(tmp_path):
    cases = {
        'task_specs = dict(normals=None)': "remove 'normals' from tasks",
        "task_specs = dict(depth=dict(kind='dpeth'))": 'task_specs.depth.kind=',
        'task_specs = dict(depth=dict(channel=1))': "unknown field(s) ['channel']",
        "val_evaluator = dict(task_metrics=dict(edeg=dict(type='EdgeMetric')))": (
            "val_evaluator.task_metrics names ['edeg']"
        ),
    }
    for text, expected in cases.items():
        with pytest.raises(TaskSpecError) as info:
            load_config(child_config(tmp_path, text, small=False))
        assert expected in str(info.value), (text, str(info.value))


def test_a_loaders_own_tasks_stand():
    cfg = load_config(
        DEMO, {'train_dataloader.dataset.tasks': ['semseg', 'depth', 'edge']}
    )
    assert list(cfg.train_dataloader.dataset.tasks) == [
        'semseg',
        'depth',
        'edge',
    ]
    assert list(cfg.val_dataloader.dataset.tasks) == [
        'semseg',
        'depth',
        'normals',
    ]
    assert list(cfg.model.tasks) == ['semseg', 'depth', 'normals']


def test_explicit_model_tasks_without_task_specs_are_left_alone():
    tasks = dict(
        semseg=dict(kind='segmentation', channels=4),
        depth=dict(kind='depth', channels=1),
    )
    cfg = Config(
        dict(
            model=dict(type='MultiTaskEncoderDecoder', tasks=tasks),
            val_evaluator=dict(
                type='MultiTaskMetric',
                task_metrics=dict(depth=dict(type='DepthMetric')),
            ),
        )
    )
    before = cfg.to_dict()
    assert apply_task_specs(cfg).to_dict() == before
    assert resolve_config(cfg).to_dict() == before


def test_resolving_twice_changes_nothing():
    cfg = load_config(PASCAL_CTAL)
    before = cfg.to_dict()
    assert resolve_config(cfg).to_dict() == before


def test_segmentation_metric_counts_the_dataset_classes():
    metric = SegmentationMetric(task='human_parts')
    metric.dataset_meta = dict(human_parts_classes=('bg', 'head', 'arm'))
    assert metric.num_classes == 3
    gt = np.array([[0, 1], [2, 2]])
    assert metric.image_statistics(gt, gt).shape == (3, 3)
    with pytest.raises(ValueError, match="no 'classes' to count"):
        SegmentationMetric(task='semseg').num_classes
    assert SegmentationMetric(num_classes=6).num_classes == 6


def test_an_unresolved_config_built_directly_names_the_loading_paths(tmp_path):
    # mmengine's Runner.from_cfg does not read runner_type: the model says what to use
    from ctal_mm.registry import MODELS

    cfg = Config.fromfile(
        child_config(tmp_path, "tasks = ('semseg', 'depth')")
    )
    register_all_modules()
    with pytest.raises(
        ValueError, match='model.tasks is not set.*load_config'
    ):
        MODELS.build(cfg.model)
