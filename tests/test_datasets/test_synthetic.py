"""Synthetic scenes: determinism, cross-task consistency, the dataset and its base config."""

import numpy as np
import pytest
from dataset_layouts import config_path

from ctal_mm.datasets import SyntheticScenesDataset, render_scene
from ctal_mm.datasets.synthetic import (
    FOCAL_PER_WIDTH,
    synthetic_classes,
)
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import DATASETS

TASKS = ('semseg', 'depth', 'normals', 'edge', 'saliency', 'human_parts')


def camera_rays(h, w):
    focal = FOCAL_PER_WIDTH * w
    u = (np.arange(w) + 0.5 - w / 2) / focal
    v = (np.arange(h) + 0.5 - h / 2) / focal
    return np.stack(
        np.broadcast_arrays(u[None], v[:, None], np.ones((h, w))), -1
    )


def test_deterministic_per_seed_and_index():
    a = render_scene(0, 5, 24, 32)
    b = render_scene(0, 5, 24, 32)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(render_scene(0, 6, 24, 32)['img'], a['img'])
    assert not np.array_equal(render_scene(1, 5, 24, 32)['img'], a['img'])


def test_maps_follow_the_convention():
    scene = render_scene(3, 0, 30, 40, num_classes=7)
    assert scene['img'].dtype == np.uint8 and scene['img'].shape == (30, 40, 3)
    for task in ('semseg', 'edge', 'saliency', 'human_parts'):
        assert scene[task].dtype == np.uint8 and scene[task].shape == (30, 40)
    assert scene['depth'].dtype == np.float32 and scene['depth'].shape == (
        30,
        40,
    )
    assert scene['normals'].dtype == np.float32
    assert scene['normals'].shape == (30, 40, 3)
    assert scene['semseg'].max() < 7
    with pytest.raises(ValueError, match='num_classes=3'):
        render_scene(0, 0, 8, 8, num_classes=3)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_tasks_are_mutually_consistent(seed):
    h, w = 72, 96
    for index in range(4):
        scene = render_scene(seed, index, h, w)
        semseg, depth = scene['semseg'].astype(int), scene['depth']
        normals = scene['normals']
        # depth: positive everywhere (a closed room); normals: unit, facing the camera
        assert (depth > 0).all() and np.isfinite(depth).all()
        np.testing.assert_allclose(
            np.linalg.norm(normals, axis=-1), 1, atol=1e-5
        )
        assert ((normals * camera_rays(h, w)).sum(-1) < 1e-6).all()
        # saliency: exactly the objects; parts: only on objects
        is_object = semseg >= 3
        np.testing.assert_array_equal(scene['saliency'], is_object)
        np.testing.assert_array_equal(scene['human_parts'] > 0, is_object)
        assert set(np.unique(scene['human_parts'])) <= {0, 1, 2, 3}
        # edges: on both sides of every label change ...
        edge = scene['edge'].astype(bool)
        assert set(np.unique(scene['edge'])) <= {0, 1}
        for axis in (0, 1):
            labels, along, flags = (
                np.moveaxis(x, axis, 0) for x in (semseg, depth, edge)
            )
            change = labels[1:] != labels[:-1]
            assert flags[1:][change].all() and flags[:-1][change].all()
            # ... and wherever depth is discontinuous: inverse depth is affine along a plane
            # and smooth on a curved surface, so a step of over 10% in depth that is much
            # larger than the steps on either side of it is an occlusion contour
            step = np.abs(np.diff(1 / along, axis=0))
            ratio = np.maximum(along[1:], along[:-1]) / np.minimum(
                along[1:], along[:-1]
            )
            jump = step[1:-1] > 3 * np.maximum(step[:-2], step[2:]) + 1e-3
            jump &= ratio[1:-1] > 1.1
            assert jump.any() or not is_object.any()
            assert flags[1:-2][jump].all() and flags[2:-1][jump].all()
        # the image is shaded: not flat, and objects are distinguishable from the room
        assert scene['img'].std() > 10


def test_dataset_and_its_metainfo():
    dataset = SyntheticScenesDataset(
        num_samples=4,
        img_size=(16, 20),
        num_classes=8,
        seed=2,
        tasks=('semseg', 'edge'),
        pipeline=[
            dict(type='LoadSyntheticScene'),
            dict(type='PackMultiTaskInputs'),
        ],
    )
    assert len(dataset) == 4
    meta = dataset.metainfo
    assert (
        meta['classes'] == synthetic_classes(8) and len(meta['palette']) == 8
    )
    assert meta['classes'][:3] == ('floor', 'wall', 'ceiling')
    assert meta['tasks'] == ('semseg', 'edge')
    item = dataset[2]
    sample = item['data_samples']
    assert item['inputs'].shape == (3, 16, 20)
    assert sample.gt_tasks == ['edge', 'semseg']
    assert (
        sample.metainfo['img_path'] is None
        and sample.metainfo['sample_idx'] == 2
    )
    scene = render_scene(2, 2, 16, 20, 8)
    np.testing.assert_array_equal(
        sample.gt('semseg')[0].numpy(), scene['semseg']
    )
    np.testing.assert_array_equal(
        item['inputs'].numpy().transpose(1, 2, 0), scene['img']
    )
    with pytest.raises(ValueError, match='provides'):
        SyntheticScenesDataset(tasks=('semseg', 'sal'))


def test_base_config():
    cfg = load_config(config_path('synthetic'))
    assert 'data_preprocessor' in cfg
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(train) >= 100 and len(val) >= 16
    assert train.metainfo['tasks'] == ('semseg', 'depth', 'normals')
    assert set(SyntheticScenesDataset.METAINFO['tasks']) == set(TASKS)
    sample = train[0]['data_samples']
    assert sample.gt_tasks == ['depth', 'normals', 'semseg']
    assert sample.metainfo['img_shape'] == tuple(cfg.synthetic_img_size)
    # held-out: validation scenes differ from training scenes
    assert not np.array_equal(
        val[0]['inputs'].numpy(),
        train.pipeline.transforms[0](dict(train.get_data_info(0)))[
            'img'
        ].transpose(2, 0, 1),
    )
    all_tasks = dict(cfg.train_dataloader.dataset, tasks=TASKS, num_samples=2)
    sample = DATASETS.build(all_tasks)[1]['data_samples']
    assert sample.gt_tasks == sorted(TASKS)
