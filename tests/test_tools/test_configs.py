"""Every config under configs/ builds its model, datasets and evaluator; the synthetic and a
real-layout (NYUv2) config train one iteration and validate through the Runner; a config that
inherits a base config and drops a task trains."""

import glob
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from repo_scripts import REPO, load_script

from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import DATASETS, METRICS, MODELS
from ctal_mm.utils import register_all_modules

CONFIGS = sorted(
    p
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p
)
REFERENCE_PARAMS = {  # ctal_official.md; PASCAL: minus 9,024 per mmpretrain Swin backbone
    'ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py': 6_057_216,
    'ctal_hrnet18s_1xb8-75e_cityscapes-128x256.py': 5_262_854,
    'hps_hrnet18s_1xb8-200e_nyuv2-288x384.py': 4_086_457,
    'mctal_hrnet18s_1xb8-75e_cityscapes-128x256.py': 8_474_086,
    'stl_hrnet18s_1xb8-75e_cityscapes-128x256.py': 7_874_280,
}


def _layouts():
    return load_script('tests/test_datasets/dataset_layouts.py')


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    layouts = _layouts()
    tmp = tmp_path_factory.mktemp('roots')
    nyu = str(tmp / 'nyuv2')
    for split, n in (('train', 2), ('val', 2)):
        layouts.write_mtan(
            nyu, split, ('image', 'label', 'depth', 'normal'), n, (64, 64), 13
        )
    city, _ = layouts.cityscapes_tree(tmp)
    pascal = str(tmp / 'PASCAL_MT')
    layouts.make_pascal(pascal)
    nyud_mt = str(tmp / 'NYUD_MT')
    layouts.make_nyud_mt(nyud_mt, 'mtinet')
    return dict(
        NYUv2Dataset=nyu,
        CityscapesMTDataset=city,
        PascalContextMTDataset=pascal,
        NYUDMTDataset=nyud_mt,
    )


def _point_at(cfg, roots):
    # no ImageNet file here: from scratch (the verified pretrained init has its own tests)
    if cfg.model.get('backbone', {}).get('init_cfg'):
        cfg.model.backbone.init_cfg = None
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader]['dataset']
        if dataset['type'] in roots:
            dataset['data_root'] = roots[dataset['type']]
        cfg[loader]['num_workers'] = 0
        cfg[loader]['persistent_workers'] = False


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS]
)
def test_config_builds_model_datasets_and_evaluator(path, data_roots):
    register_all_modules()  # building outside a Runner: ctal_mm as the default scope
    cfg = load_config(path)
    assert cfg.default_scope == 'ctal_mm'
    model = MODELS.build(cfg.model)
    expected = REFERENCE_PARAMS.get(osp.basename(path))
    if expected is not None:
        assert sum(p.numel() for p in model.parameters()) == expected
    _point_at(cfg, data_roots)
    for loader in ('train_dataloader', 'val_dataloader'):
        dataset = DATASETS.build(cfg[loader]['dataset'])
        assert len(dataset) > 0
        # the model predicts exactly the tasks the dataset provides
        assert set(dataset.metainfo['tasks']) >= set(cfg.model.tasks)
        assert set(
            cfg[loader]['dataset'].get('tasks', cfg.model.tasks)
        ) == set(cfg.model.tasks)
    metric = METRICS.build(cfg.val_evaluator)
    assert set(metric.metrics) == set(cfg.model.tasks)


SMALL = dict(max_epochs=1, val_interval=1)


def _train_one_iteration(cfg, work_dir):
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.update(SMALL)
    cfg.train_dataloader.batch_size = 2
    cfg.val_dataloader.batch_size = 2
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


@pytest.mark.parametrize(
    'name,feature_size',
    [
        (
            'ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py',
            (16, 16),
        ),  # the 64x64 fixture
        ('ctal_hrnet18s_1xb2-200e_nyuv2-576x768.py', (32, 32)),  # upsampled x2
    ],
)
def test_nyuv2_real_layout_trains_and_validates(
    name, feature_size, data_roots, tmp_path
):
    register_all_modules(init_default_scope=False)
    cfg = load_config(osp.join(REPO, 'configs', 'ctal', name))
    _point_at(cfg, data_roots)
    cfg.model.decoder.affinity.feature_size = feature_size
    runner = _train_one_iteration(cfg, tmp_path)
    assert runner.iter == 1
    metrics = runner.val_loop.run()
    assert {'semseg/mIoU', 'depth/abs_err', 'normals/mean'} <= set(metrics)


def test_inherited_config_dropping_a_task_trains(tmp_path):
    register_all_modules(init_default_scope=False)
    child = tmp_path / 'drop_normals.py'
    child.write_text(f"""
_base_ = ['{osp.join(REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-4e_synthetic-96x128.py')}']
tasks = ('semseg', 'depth')
model = dict(
    decoder=dict(affinity=dict(feature_size=(8, 8))),
    tasks=dict(_delete_=True, semseg=dict(kind='segmentation', channels=9),
               depth=dict(kind='depth', channels=1)))
train_dataloader = dict(num_workers=0, persistent_workers=False,
                        dataset=dict(tasks=tasks, num_samples=2, img_size=(32, 32)))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(tasks=tasks, num_samples=2, img_size=(32, 32)))
test_dataloader = val_dataloader
val_evaluator = dict(task_metrics=dict(_delete_=True,
                                       semseg=dict(type='SegmentationMetric', num_classes=9),
                                       depth=dict(type='DepthMetric')))
test_evaluator = val_evaluator
""")
    cfg = load_config(str(child))
    runner = _train_one_iteration(cfg, tmp_path / 'work')
    assert set(runner.model.tasks) == {'semseg', 'depth'}
    assert (
        runner.model.decoder.affinity.fusion.weight.shape[1] == 2
    )  # T = 2 tasks
    assert isinstance(runner.val_loop.run()['depth/abs_err'], float)
    assert torch.isfinite(runner.model.decoder.affinity.fusion.weight).all()
