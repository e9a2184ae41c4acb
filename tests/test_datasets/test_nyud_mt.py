"""NYUD-MT in both archive layouts: encodings, detection, bad archives, configs, the Runner."""

import os
import os.path as osp

import numpy as np
import pytest
import torch
from dataset_layouts import (
    NYUD_IDS,
    NYUD_SIZES,
    NYUD_SPLITS,
    REPO,
    config_path,
    make_nyud_mt,
)
from mmengine.runner import Runner
from PIL import Image

from ctal_mm.datasets import DataFileError, NYUDMTDataset
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import DATASETS

LOAD = [
    dict(type='LoadMultiTaskImage'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]
LAYOUTS = ('mtinet', 'atrc')
# 8-bit PNG normals are within half a quantisation step per channel of the true vector
PNG_NORMAL_ATOL = 2.0 / 255


@pytest.fixture(params=LAYOUTS)
def archive(request, tmp_path):
    """(root, layout, written) of a tiny archive in each layout."""
    root = str(tmp_path / 'NYUD_MT')
    return root, request.param, make_nyud_mt(root, request.param)


def expected_semseg(raw):
    return np.where(raw == 0, 255, raw.astype(np.int64) - 1)


def test_metainfo():
    meta = NYUDMTDataset.METAINFO
    assert meta['tasks'] == ('semseg', 'depth', 'normals', 'edge')
    assert len(meta['classes']) == len(meta['palette']) == 40
    assert meta['classes'][0] == 'wall' and meta['classes'][-1] == 'otherprop'
    assert len({tuple(c) for c in meta['palette']}) == 40
    with pytest.raises(ValueError, match="layout='nyu'.*'mtinet'"):
        NYUDMTDataset(layout='nyu', data_root='x')


def test_encodings_of_both_layouts(archive):
    root, layout, written = archive
    dataset = NYUDMTDataset(data_root=root, split='val', pipeline=LOAD)
    assert dataset.layout == layout
    assert len(dataset) == len(NYUD_SPLITS['val'])
    for index, image_id in enumerate(NYUD_SPLITS['val']):
        info = written[image_id]
        item = dataset[index]
        sample = item['data_samples']
        h, w = info['semseg'].shape
        assert item['inputs'].dtype == torch.uint8
        assert item['inputs'].shape == (3, h, w)
        if layout == 'atrc':  # lossless PNG images
            np.testing.assert_array_equal(
                item['inputs'].numpy().transpose(1, 2, 0), info['image']
            )
        # labels: 1..40 -> 0..39, unlabelled 0 -> ignore 255
        semseg = sample.gt('semseg')[0].numpy()
        np.testing.assert_array_equal(semseg, expected_semseg(info['semseg']))
        assert set(np.unique(semseg)) <= set(range(40)) | {255}
        assert semseg[1, 0] == 0 and semseg[1, 1] == 39
        assert (semseg[0, :3] == 255).all()
        # depth: metres, unchanged; no measurement stays 0
        depth = sample.gt('depth')[0].numpy()
        np.testing.assert_array_equal(depth, info['depth'])
        assert (depth[2, :4] == 0).all() and depth.max() < 10
        # normals: unit vectors; none stays all-zero
        normals = sample.gt('normals').numpy().transpose(1, 2, 0)
        norm = np.linalg.norm(normals, axis=-1)
        valid = np.linalg.norm(info['normals'], axis=-1) > 0
        np.testing.assert_allclose(norm[valid], 1.0, atol=1e-5)
        assert (normals[~valid] == 0).all() and (~valid).sum() == 3
        atol = 1e-6 if layout == 'mtinet' else PNG_NORMAL_ATOL
        np.testing.assert_allclose(
            normals[valid], info['normals'][valid], atol=atol
        )
        # edges: binary {0, 1}
        edge = sample.gt('edge')[0].numpy()
        assert set(np.unique(edge)) == {0, 1}
        np.testing.assert_array_equal(edge, info['edge'])


def test_task_subset_and_explicit_layout(archive):
    root, layout, _ = archive
    dataset = NYUDMTDataset(
        data_root=root, tasks=('depth', 'edge'), layout=layout, pipeline=LOAD
    )
    assert dataset.metainfo['task_kinds'] == dict(depth='depth', edge='edge')
    assert dataset[0]['data_samples'].gt_tasks == ['depth', 'edge']
    assert dataset.get_data_info(0)['image_id'] == NYUD_SPLITS['train'][0]


# ------------------------------------------------------------ bad archives


def test_wrong_layout_mixed_and_partial_archives(archive):
    root, layout, _ = archive
    other = 'atrc' if layout == 'mtinet' else 'mtinet'
    # the other layout named by hand: the files it wants are absent, the real ones named
    with pytest.raises(DataFileError, match='mixes layouts') as error:
        NYUDMTDataset(data_root=root, layout=other)
    assert 'but ' in str(error.value) and 'exists' in str(error.value)
    # one image's normals converted to the other layout: detection refuses the mix
    first = NYUD_SPLITS['train'][0]
    src = 'npy' if layout == 'mtinet' else 'png'
    dst = 'png' if layout == 'mtinet' else 'npy'
    os.rename(
        osp.join(root, 'normals', f'{first}.{src}'),
        osp.join(root, 'normals', f'{first}.{dst}'),
    )
    with pytest.raises(DataFileError, match='mix the two NYUD-MT layouts'):
        NYUDMTDataset(data_root=root)
    # without normals the rest of the archive is consistent
    assert len(NYUDMTDataset(data_root=root, tasks=('semseg', 'edge'))) == 2
    # a partial archive: one edge map missing is named, with the count
    last = NYUD_SPLITS['val'][-1]
    (edge,) = [n for n in os.listdir(osp.join(root, 'edge')) if last in n]
    os.remove(osp.join(root, 'edge', edge))
    with pytest.raises(DataFileError, match=r'edge: 1 of 2 missing') as error:
        NYUDMTDataset(data_root=root, split='val', tasks=('edge',))
    assert 'fewer tasks' in str(error.value)


def test_missing_root_split_and_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match='data_root .* does not exist'):
        NYUDMTDataset(data_root=str(tmp_path / 'nowhere'))
    parent = tmp_path / 'datasets'
    root = str(parent / 'NYUDv2')
    make_nyud_mt(root, 'atrc')
    # data_root at the folder the archive was extracted into
    with pytest.raises(FileNotFoundError, match='point data_root at .*NYUDv2'):
        NYUDMTDataset(data_root=str(parent))
    os.remove(osp.join(root, 'gt_sets', 'val.txt'))
    with pytest.raises(FileNotFoundError, match='val.txt does not exist'):
        NYUDMTDataset(data_root=root, split='val')
    os.rename(osp.join(root, 'edge'), osp.join(root, 'edges'))
    with pytest.raises(FileNotFoundError, match="edge' maps"):
        NYUDMTDataset(data_root=root)


def test_bad_values_name_the_file(tmp_path):
    root = str(tmp_path / 'NYUD_MT')
    make_nyud_mt(root, 'mtinet')
    first = NYUD_IDS[0]
    (h, w) = NYUD_SIZES[0]

    def first_item(**kwargs):
        dataset = NYUDMTDataset(data_root=root, pipeline=LOAD, **kwargs)
        return dataset[0]

    semseg = osp.join(root, 'segmentation', f'{first}.png')
    Image.fromarray(np.full((h, w), 41, np.uint8)).save(semseg)
    with pytest.raises(
        DataFileError, match=rf'{first}.png: contains value\(s\) \[41\]'
    ):
        first_item(tasks=('semseg',))
    depth = osp.join(root, 'depth', f'{first}.npy')
    np.save(depth, np.full((h, w), 2500.0, np.float32))
    with pytest.raises(DataFileError, match='millimetres'):
        first_item(tasks=('depth',))
    assert first_item(tasks=('depth',), max_depth=None)
    normals = osp.join(root, 'normals', f'{first}.npy')
    np.save(normals, np.full((h, w, 3), 2.0, np.float32))
    with pytest.raises(DataFileError, match=f'{first}.npy: values reach 2'):
        first_item(tasks=('normals',))
    edge = osp.join(root, 'edge', f'{first}.npy')
    np.save(edge, np.full((h, w), 3.0, np.float32))
    with pytest.raises(DataFileError, match=r'values span \[3, 3\]'):
        first_item(tasks=('edge',))
    with open(edge, 'wb') as f:
        f.write(b'\x93NUMPY truncated')
    with pytest.raises(DataFileError, match=f'{first}.npy: not a readable'):
        first_item(tasks=('edge',))


def test_maps_of_another_size(tmp_path):
    root = str(tmp_path / 'NYUD_MT')
    written = make_nyud_mt(root, 'atrc')
    first = NYUD_IDS[0]
    h, w = NYUD_SIZES[0]
    # an edge map at twice the image size
    big = np.kron(written[first]['edge'], np.ones((2, 2), np.uint8)) * 255
    Image.fromarray(big).save(osp.join(root, 'edge', f'{first}.png'))
    with pytest.raises(DataFileError, match='resize_mismatched=True'):
        NYUDMTDataset(
            data_root=root,
            tasks=('edge',),
            resize_mismatched=False,
            pipeline=LOAD,
        )[0]
    dataset = NYUDMTDataset(data_root=root, tasks=('edge',), pipeline=LOAD)
    with pytest.warns(UserWarning, match='resizing it to the image'):
        edge = dataset[0]['data_samples'].gt('edge')[0].numpy()
    assert edge.shape == (h, w)
    np.testing.assert_array_equal(edge, written[first]['edge'])


# ------------------------------------------------------------ configs


def test_base_config_pipelines(archive):
    root, layout, written = archive
    cfg = load_config(config_path('nyud_mt'))
    assert cfg.crop_size == (480, 640)
    cfg.train_dataloader.dataset.data_root = root
    train = DATASETS.build(cfg.train_dataloader.dataset)
    np.random.seed(0)
    for index in range(2):
        sample = train[index]['data_samples']
        assert sample.metainfo['pad_shape'] == (480, 640)
        semseg, depth = sample.gt('semseg')[0], sample.gt('depth')[0]
        normals, edge = sample.gt('normals'), sample.gt('edge')[0]
        left, right, top, bottom = sample.metainfo['padding_size']
        assert top > 0 and left > 0  # the tiny images are padded, centred
        assert (semseg[:top] == 255).all() and (edge[:, :left] == 255).all()
        assert (depth[:top] == 0).all() and (normals[:, -bottom:] == 0).all()
        assert set(semseg.unique().tolist()) <= set(range(40)) | {255}
        assert set(edge.unique().tolist()) <= {0, 1, 255}
        norm = normals.norm(dim=0)
        assert torch.all(((norm - 1).abs() < 1e-4) | (norm == 0))
    cfg.val_dataloader.dataset.data_root = root
    val = DATASETS.build(cfg.val_dataloader.dataset)
    sample = val[0]['data_samples']
    image_id = NYUD_SPLITS['val'][0]
    assert sample.metainfo['img_shape'] == written[image_id]['semseg'].shape
    np.testing.assert_array_equal(
        sample.gt('semseg')[0].numpy(),
        expected_semseg(written[image_id]['semseg']),
    )


def _shrink(cfg, size, feature_size=None):
    """The config's crop / pad size set to ``size`` for tiny fixtures (CTAL: its features)."""
    for step in cfg.train_dataloader.dataset.pipeline:
        if step['type'] == 'MultiTaskRandomCrop':
            step['crop_size'] = size
        if step['type'] == 'MultiTaskPad':
            step['size'] = size
    cfg.model.data_preprocessor.size = size
    cfg.model.data_preprocessor.test_cfg.size = size
    if feature_size is not None:
        cfg.model.decoder.affinity.feature_size = feature_size
    cfg.model.backbone.init_cfg = None  # from scratch: no ImageNet file here


def _runner_cfg(name, root, work_dir):
    cfg = load_config(osp.join(REPO, 'configs', 'nyud_mt', name))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
        cfg[loader].batch_size = 2
    cfg.val_evaluator.task_metrics.edge.nproc = 1
    # made-up single-task numbers: delta_m must come out of exactly the four metrics
    cfg.val_evaluator.stl_baselines = dict(
        semseg=dict(mIoU=10.0),
        depth=dict(rmse=1.0),
        normals=dict(mean=30.0),
        edge=dict(odsF=50.0),
    )
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return cfg


@pytest.mark.parametrize(
    'name, layout',
    [
        ('ctal_hrnet18s_1xb8-100e_nyud-mt-480x640.py', 'mtinet'),
        ('ctal_hrnet18s_1xb8-100e_nyud-mt-480x640.py', 'atrc'),
        ('hps_hrnet18s_1xb8-100e_nyud-mt-480x640.py', 'atrc'),
    ],
)
def test_config_trains_one_iteration_and_evaluates(name, layout, tmp_path):
    root = str(tmp_path / 'NYUD_MT')
    make_nyud_mt(root, layout)
    cfg = _runner_cfg(name, root, tmp_path / 'work')
    assert list(cfg.model.tasks) == ['semseg', 'depth', 'normals', 'edge']
    assert [cfg.model.tasks[t].weight for t in cfg.model.tasks] == [
        1.0,
        1.0,
        10.0,
        50.0,
    ]
    assert cfg.model.tasks.edge.loss.pos_weight == 0.95
    assert cfg.val_evaluator.task_metrics.edge.max_dist == 0.011
    _shrink(cfg, (32, 32), (8, 8) if name.startswith('ctal') else None)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    metrics = runner.val_loop.run()
    for key in ('semseg/mIoU', 'depth/rmse', 'normals/mean', 'edge/odsF'):
        assert np.isfinite(metrics[key]), key
    expected = np.mean(
        [
            (metrics['semseg/mIoU'] - 10.0) / 10.0,
            -(metrics['depth/rmse'] - 1.0) / 1.0,
            -(metrics['normals/mean'] - 30.0) / 30.0,
            (metrics['edge/odsF'] - 50.0) / 50.0,
        ]
    )
    assert metrics['delta_m'] == pytest.approx(expected * 100)
