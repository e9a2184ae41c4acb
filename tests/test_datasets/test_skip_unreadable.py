"""``skip_unreadable=True``: an unreadable sample is replaced, with a warning naming the file,
and counted at the end of the epoch, also when data workers load it."""

import os
import os.path as osp

import numpy as np
import pytest
from mmengine.runner import Runner
from reliability_helpers import REPO

from ctal_mm.datasets.base_multitask_dataset import SKIPPED_KEY
from ctal_mm.datasets.file_io import DataFileError
from ctal_mm.engine.config_loading import load_config
from ctal_mm.engine.hooks.skipped_sample_hook import SKIPPED_INFO
from ctal_mm.registry import DATASETS
from ctal_mm.utils import register_all_modules

NYUV2 = osp.join(
    REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py'
)
BAD = 2


@pytest.fixture(scope='module')
def nyuv2(tmp_path_factory):
    """4 NYUv2 (MTAN layout) samples of 32x32; image 2 is truncated."""
    root = tmp_path_factory.mktemp('nyuv2')
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        for i in range(4):
            arrays = dict(
                image=rng.random((32, 32, 3), dtype=np.float32),
                label=rng.integers(-1, 13, (32, 32)).astype(np.float32),
                depth=rng.uniform(0.5, 5, (32, 32, 1)).astype(np.float32),
                normal=np.tile(np.float32([0, 0, 1]), (32, 32, 1)),
            )
            for folder, array in arrays.items():
                os.makedirs(root / split / folder, exist_ok=True)
                np.save(root / split / folder / f'{i}.npy', array)
    bad = root / 'train' / 'image' / f'{BAD}.npy'
    bad.write_bytes(bad.read_bytes()[:100])
    return str(root)


def _dataset(root, **kwargs):
    register_all_modules(init_default_scope=False)
    pipeline = [
        dict(type='LoadMultiTaskImage'),
        dict(type='LoadMultiTaskAnnotations'),
        dict(type='PackMultiTaskInputs'),
    ]
    return DATASETS.build(
        dict(type='NYUv2Dataset', data_root=root, pipeline=pipeline, **kwargs)
    )


def test_unreadable_files_stop_training_unless_skipped(nyuv2):
    with pytest.raises(DataFileError, match=f'{BAD}.npy: not a readable'):
        _dataset(nyuv2)[BAD]
    dataset = _dataset(nyuv2, skip_unreadable=True)
    sample = dataset[BAD]['data_samples']
    (record,) = sample.metainfo[SKIPPED_KEY]
    assert record['index'] == BAD and record['img_path'].endswith(f'{BAD}.npy')
    assert 'not a readable .npy array' in record['error']
    assert sample.metainfo['img_path'] != record['img_path']
    assert SKIPPED_KEY not in dataset[0]['data_samples'].metainfo
    with pytest.raises(ValueError, match='evaluation must see every sample'):
        _dataset(nyuv2, split='val', test_mode=True, skip_unreadable=True)


def test_skipped_samples_are_counted_per_epoch_across_workers(
    nyuv2, tmp_path, capsys
):
    register_all_modules(init_default_scope=False)
    cfg = load_config(NYUV2)
    cfg.model.decoder.affinity.feature_size = (8, 8)
    cfg.model.backbone.init_cfg = None  # from scratch: no ImageNet file here
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = nyuv2
        cfg[loader].update(
            batch_size=2, num_workers=0, persistent_workers=False
        )
    # two worker processes load the training samples: the count must reach the main one
    cfg.train_dataloader.update(num_workers=2)
    cfg.train_dataloader.dataset.skip_unreadable = True
    cfg.train_cfg.update(max_epochs=2, val_interval=10)
    cfg.default_hooks.checkpoint.interval = 10
    cfg.default_hooks.logger.interval = 1
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    log = capsys.readouterr().out
    assert runner.message_hub.get_info(SKIPPED_INFO) == 2  # once an epoch
    for epoch in (1, 2):
        assert f'Epoch {epoch}: 1 unreadable sample(s) skipped' in log
    assert f'train/image/{BAD}.npy' in log and 'not a readable' in log
