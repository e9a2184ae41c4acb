"""Config mistakes are reported before training starts, each naming its key and the fix."""

import glob
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.runner import Runner
from reliability_helpers import DEMO, REPO, TRAIN, env

from ctal_mm.engine.config_checks import ConfigError, check_config
from ctal_mm.engine.config_loading import load_config
from ctal_mm.utils import register_all_modules

CONFIGS = sorted(
    p
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p
)


@pytest.fixture(autouse=True, scope='module')
def _registered():
    register_all_modules(init_default_scope=False)


def _demo(**changes):
    cfg = load_config(DEMO)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(
            num_workers=0, persistent_workers=False, batch_size=2
        )
        cfg[loader].dataset.update(num_samples=2, img_size=(32, 32))
    cfg.model.decoder.affinity.feature_size = (8, 8)
    cfg.merge_from_dict(changes)
    return cfg


def _problems(cfg):
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    return info.value.problems


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS]
)
def test_every_shipped_config_passes(path):
    check_config(load_config(path))


def test_a_task_the_dataset_does_not_provide():
    cfg = _demo()
    cfg.model.tasks.edge = dict(kind='edge', channels=1)
    (problem,) = [p for p in _problems(cfg) if 'train_dataloader' in p]
    assert problem.startswith('model.tasks.edge: train_dataloader.dataset')
    assert "does not provide task 'edge'" in problem
    assert "Add 'edge' to train_dataloader.dataset.tasks" in problem


def test_class_counts_that_disagree_with_the_metainfo():
    cfg = _demo(
        **{
            'model.tasks.semseg.channels': 13,
            'val_evaluator.task_metrics.semseg.num_classes': 13,
        }
    )
    problems = _problems(cfg)
    assert any(
        p.startswith('model.tasks.semseg.channels=13')
        and '9 semseg classes' in p
        and 'Set model.tasks.semseg.channels=9' in p
        for p in problems
    ), problems
    assert any(
        'val_evaluator.task_metrics.semseg.num_classes=13' in p
        and 'Set val_evaluator.task_metrics.semseg.num_classes=9' in p
        for p in problems
    ), problems


def test_losses_metrics_and_channels_that_do_not_fit_the_kind():
    cfg = _demo()
    cfg.model.tasks.depth.loss = dict(type='MTCrossEntropyLoss')
    cfg.model.tasks.normals.channels = 1
    cfg.val_evaluator.task_metrics.depth = dict(type='SegmentationMetric')
    problems = _problems(cfg)
    assert len(problems) == 3, problems
    loss, channels, metric = sorted(problems)
    assert loss.startswith('model.tasks.depth.loss: MTCrossEntropyLoss')
    assert "'depth' is a depth task. Use MaskedL1DepthLoss" in loss
    assert 'Set model.tasks.normals.channels=3' in channels
    assert metric.startswith(
        'val_evaluator.task_metrics.depth: SegmentationMetric'
    )
    assert 'Use DepthMetric' in metric


def test_kind_messages_name_the_loss_metric_and_the_fix_in_full():
    cfg = _demo()
    cfg.model.tasks.depth.loss = dict(type='MTCrossEntropyLoss')
    cfg.val_evaluator.task_metrics.depth = dict(type='SegmentationMetric')
    loss, metric = sorted(_problems(cfg))
    assert loss == (
        'model.tasks.depth.loss: MTCrossEntropyLoss is a loss for '
        "segmentation / edge / saliency tasks, but 'depth' is a depth task. "
        'Use MaskedL1DepthLoss (or set model.tasks.depth.kind).'
    )
    assert metric == (
        'val_evaluator.task_metrics.depth: SegmentationMetric scores '
        "segmentation tasks, but 'depth' is a depth task. Use DepthMetric."
    )


def test_accepted_kinds_are_read_from_the_registered_classes(monkeypatch):
    from torch import nn

    from ctal_mm.models.task_spec import task_spec_problems
    from ctal_mm.registry import MODELS
    from ctal_mm.structures import TASK_KINDS, TaskKind

    class DepthOnlyTestLoss(nn.Module):
        ACCEPTED_KINDS = ('depth',)

    class UndeclaredTestLoss(nn.Module):
        pass

    for cls in (DepthOnlyTestLoss, UndeclaredTestLoss):
        MODELS.register_module(module=cls)
    try:
        cfg = _demo()
        cfg.model.tasks.semseg.loss = dict(type='DepthOnlyTestLoss')
        cfg.model.tasks.normals.loss = dict(type='UndeclaredTestLoss')
        (problem,) = _problems(
            cfg
        )  # a loss without ACCEPTED_KINDS: not checked
        assert problem.startswith(
            'model.tasks.semseg.loss: DepthOnlyTestLoss is a loss for depth '
            "tasks, but 'semseg' is a segmentation task. Use MTCrossEntropyLoss"
        ), problem
        cfg.model.tasks.semseg.loss = dict(type='MTCrossEntropyLoss')
        cfg.model.tasks.depth.loss = dict(type='DepthOnlyTestLoss')
        check_config(cfg)
        # a kind no registered loss accepts: the message says what to register
        monkeypatch.setitem(
            TASK_KINDS, 'heat', TaskKind('heat', 1, -1.0, is_label=False)
        )
        _, (problem,) = task_spec_problems(
            dict(
                temp=dict(
                    kind='heat', channels=1, loss=cfg.model.tasks.depth.loss
                )
            )
        )
        assert problem == (
            'model.tasks.temp.loss: DepthOnlyTestLoss is a loss for depth tasks, '
            "but 'temp' is a heat task. No registered loss accepts kind 'heat': "
            "register one whose ACCEPTED_KINDS includes 'heat' (or set "
            'model.tasks.temp.kind).'
        )
    finally:
        for cls in (DepthOnlyTestLoss, UndeclaredTestLoss):
            MODELS._module_dict.pop(cls.__name__, None)


def test_every_kind_default_loss_accepts_its_kind():
    from ctal_mm.models.task_spec import accepted_kinds
    from ctal_mm.registry import MODELS
    from ctal_mm.structures import TASK_KINDS

    for name, kind in TASK_KINDS.items():
        assert name in accepted_kinds(MODELS, kind.default_loss['type'])


def test_unknown_types_end_the_run_with_the_close_names():
    from ctal_mm.engine.launch import build_tool_runner, run_or_exit
    from ctal_mm.registry import TRANSFORMS

    cfg = _demo(**{'model.decoder.type': 'CTALDecodr'})
    cfg.work_dir = '/nonexistent/never-written'
    with pytest.raises(SystemExit) as info:
        build_tool_runner(cfg)
    message = str(info.value.code)
    assert 'CTALDecodr is not in the ctal_mm::model registry' in message
    assert "Did you mean 'CTALDecoder'," in message

    def build_flip():
        TRANSFORMS.build(dict(type='MultiTaskRandomFlp'))

    with pytest.raises(SystemExit, match="Did you mean 'MultiTaskRandomFlip'"):
        run_or_exit(build_flip)
    # any other KeyError is not ours to explain
    with pytest.raises(KeyError, match='plain'):
        run_or_exit(lambda: {}['plain'])


def _runner(cfg, tmp_path):
    cfg.work_dir = str(tmp_path)
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.train_cfg.max_epochs = 1
    return Runner.from_cfg(cfg)


def test_an_input_size_ctal_was_not_built_for_stops_before_the_first_step(
    tmp_path,
):
    # training inputs fit, but validation (after the first epoch) would not
    cfg = _demo(**{'val_dataloader.dataset.img_size': (48, 48)})
    runner = _runner(cfg, tmp_path)
    with pytest.raises(ConfigError) as info:
        runner.train()
    (problem,) = info.value.problems
    assert problem.startswith('model.decoder.affinity.feature_size=(8, 8)')
    assert 'val_dataloader gives 48x48 inputs' in problem
    assert 'Set model.decoder.affinity.feature_size=(12, 12)' in problem
    assert runner.iter == 0


def test_tools_train_reports_all_problems_before_building_anything(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            TRAIN,
            DEMO,
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            'model.tasks.semseg.channels=13',
            'model.tasks.normals.channels=1',
        ],
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    # semseg against the train and the val set, normals against its kind
    assert '3 problem(s) in the config' in proc.stderr
    assert 'Set model.tasks.semseg.channels=9' in proc.stderr
    assert 'Set model.tasks.normals.channels=3' in proc.stderr
    assert (
        'Config:' not in proc.stdout + proc.stderr
    )  # the Runner was never built
