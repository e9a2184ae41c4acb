"""NYUv2 and Cityscapes in MTAN's layout: values, task selection, configs, bad input."""

import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from dataset_layouts import config_path

from ctal_mm.datasets import (
    CityscapesMTDataset,
    DataFileError,
    NYUv2Dataset,
)
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import DATASETS

LOAD = [
    dict(type='LoadMultiTaskImage'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]


def build_from_config(name, root, loader='train_dataloader', **overrides):
    cfg = load_config(config_path(name))
    dataset_cfg = cfg[loader].dataset
    dataset_cfg.data_root = root
    dataset_cfg.update(overrides)
    return DATASETS.build(dataset_cfg), cfg


def test_nyuv2_values_follow_the_convention(nyuv2_root):
    root, arrays = nyuv2_root
    dataset = NYUv2Dataset(data_root=root, split='train', pipeline=LOAD)
    assert len(dataset) == 3
    assert dataset.metainfo['tasks'] == ('semseg', 'depth', 'normals')
    assert (
        len(dataset.metainfo['classes'])
        == len(dataset.metainfo['palette'])
        == 13
    )
    for i in range(3):
        item = dataset[i]
        sample = item['data_samples']
        np.testing.assert_allclose(
            item['inputs'].numpy().transpose(1, 2, 0),
            arrays['image'][i] * 255,
            rtol=1e-6,
        )
        semseg = sample.gt('semseg')
        assert semseg.dtype == torch.int64 and semseg.shape == (1, 12, 16)
        label = arrays['label'][i]
        expected = np.where(label < 0, 255, label).astype(np.int64)
        np.testing.assert_array_equal(semseg[0].numpy(), expected)
        depth = sample.gt('depth')
        assert depth.dtype == torch.float32 and depth.shape == (1, 12, 16)
        np.testing.assert_allclose(
            depth[0].numpy(), arrays['depth'][i][..., 0]
        )
        normals = sample.gt('normals')
        assert normals.shape == (3, 12, 16)
        norm = normals.norm(dim=0)
        invalid = (arrays['normal'][i] == 0).all(-1)
        assert torch.allclose(
            norm[~torch.from_numpy(invalid)], torch.ones(()), atol=1e-5
        )
        assert (norm[torch.from_numpy(invalid)] == 0).all()
        assert sample.metainfo['img_path'].endswith(
            osp.join('train', 'image', f'{i}.npy')
        )
        assert sample.metainfo['ori_shape'] == (12, 16)


def test_task_subset_and_unknown_task(nyuv2_root):
    root, _ = nyuv2_root
    dataset = NYUv2Dataset(data_root=root, tasks=('depth',), pipeline=LOAD)
    sample = dataset[0]['data_samples']
    assert sample.gt_tasks == ['depth']
    assert dataset.metainfo['task_kinds'] == dict(depth='depth')
    with pytest.raises(ValueError, match=r"unknown \['edge'\].*provides"):
        NYUv2Dataset(data_root=root, tasks=('depth', 'edge'))
    with pytest.raises(ValueError, match="split='test'"):
        NYUv2Dataset(data_root=root, split='test')


def test_nyuv2_through_the_base_config(nyuv2_root):
    root, arrays = nyuv2_root
    dataset, cfg = build_from_config('nyuv2', root)
    # the dataset base declares its data preprocessor and, with its task set, its evaluator
    assert 'data_preprocessor' in cfg
    assert set(cfg.val_evaluator.task_metrics) == {
        'semseg',
        'depth',
        'normals',
    }
    flips = set()
    for _ in range(12):
        sample = dataset[1]['data_samples']
        flips.add(sample.metainfo['flip'])
        normals = sample.gt('normals').numpy()
        expected = arrays['normal'][1].copy()
        if sample.metainfo['flip']:
            expected = expected[:, ::-1].copy()
            expected[..., 0] *= -1
        np.testing.assert_allclose(
            normals.transpose(1, 2, 0), expected, atol=1e-6
        )
    assert flips == {True, False}
    val, _ = build_from_config('nyuv2', root, 'val_dataloader')
    assert len(val) == 2
    assert not any(val[0]['data_samples'].metainfo['flip'] for _ in range(5))


def test_cityscapes_label_sets(cityscapes_root):
    root, arrays = cityscapes_root
    dataset, _ = build_from_config(
        'cityscapes', root, 'val_dataloader', split='train'
    )
    assert (
        dataset.metainfo['classes'][0] == 'road'
        and len(dataset.metainfo['classes']) == 19
    )
    label = arrays['label_19'][0]
    np.testing.assert_array_equal(
        dataset[0]['data_samples'].gt('semseg')[0].numpy(),
        np.where(label < 0, 255, label),
    )
    seven = CityscapesMTDataset(
        data_root=root, label_set='label_7', pipeline=LOAD
    )
    assert len(seven.metainfo['classes']) == 7
    label = arrays['label_7'][1]
    np.testing.assert_array_equal(
        seven[1]['data_samples'].gt('semseg')[0].numpy(),
        np.where(label < 0, 255, label),
    )
    with pytest.raises(ValueError, match="label_set='label_8'"):
        CityscapesMTDataset(data_root=root, label_set='label_8')


# ------------------------------------------------------------------ bad input


def test_missing_data_root_and_folders(nyuv2_root, tmp_path):
    with pytest.raises(
        FileNotFoundError, match='data_root .*does not exist.*data_root='
    ):
        NYUv2Dataset(data_root=str(tmp_path / 'nowhere'))
    root, _ = nyuv2_root
    os.rename(
        osp.join(root, 'train', 'depth'), osp.join(root, 'train', 'depth_')
    )
    with pytest.raises(
        FileNotFoundError, match=r"train/depth \(the 'depth' maps\)"
    ):
        NYUv2Dataset(data_root=root)
    # the missing folder is not needed when its task is not selected
    assert len(NYUv2Dataset(data_root=root, tasks=('semseg',))) == 3


def test_mismatched_file_counts(nyuv2_root):
    root, _ = nyuv2_root
    os.remove(osp.join(root, 'train', 'label', '1.npy'))
    with pytest.raises(
        DataFileError,
        match=r'label has 2 .npy files but .*has 3; missing here: 1.npy',
    ):
        NYUv2Dataset(data_root=root)
    np.save(
        osp.join(root, 'train', 'depth', '7.npy'),
        np.ones((12, 16, 1), np.float32),
    )
    with pytest.raises(DataFileError, match='without an image: 7.npy'):
        NYUv2Dataset(data_root=root, tasks=('depth',))


def test_badly_named_file(nyuv2_root):
    root, _ = nyuv2_root
    np.save(osp.join(root, 'train', 'image', 'extra.npy'), np.zeros(1))
    with pytest.raises(DataFileError, match='extra.npy: MTAN files are named'):
        NYUv2Dataset(data_root=root)


@pytest.mark.parametrize(
    'folder, content, message',
    [
        ('label', b'\x93NUMPY garbage', 'not a readable .npy array'),
        ('depth', 'truncate', 'not a readable .npy array'),
        (
            'normal',
            np.zeros((12, 15, 3), np.float32),
            r'shape \(12, 15, 3\); expected',
        ),
        ('label', np.zeros((12, 16), np.complex64), 'dtype complex64'),
        ('label', np.full((12, 16), 13.0, np.float32), r'value\(s\) \[13.0\]'),
        ('label', np.full((12, 16), 0.5, np.float32), 'non-integer'),
        ('depth', -np.ones((12, 16, 1), np.float32), 'negative depths'),
        ('depth', np.full((12, 16), np.nan, np.float32), 'NaN'),
        (
            'normal',
            np.full((12, 16, 3), 200.0, np.float32),
            'values reach 200',
        ),
        (
            'image',
            np.full((12, 16, 3), 200.0, np.float32),
            r'values span \[200, 200\]',
        ),
        ('image', np.zeros((12, 16), np.float32), r'shape \(12, 16\)'),
    ],
)
def test_corrupt_or_wrong_files_name_the_file(
    nyuv2_root, folder, content, message
):
    root, _ = nyuv2_root
    path = osp.join(root, 'train', folder, '2.npy')
    if isinstance(content, bytes):
        with open(path, 'wb') as f:
            f.write(content)
    elif isinstance(content, str):  # truncate a valid file
        size = osp.getsize(path)
        with open(path, 'r+b') as f:
            f.truncate(size // 2)
    else:
        np.save(path, content)
    dataset = NYUv2Dataset(data_root=root, pipeline=LOAD)
    dataset[0]  # the other samples still load
    with pytest.raises(DataFileError, match=f'{re.escape(path)}.*{message}'):
        dataset[2]


def test_normals_as_stored_or_unit(nyuv2_root, tmp_path):
    from ctal_mm.datasets.transforms.loading import decode_npy_normals

    stored = np.array(
        [
            [
                [0.0, 0.0, 0.9],
                [0.5, -0.5, 0.0],
                [0.0, 0.0, 0.0],
                [0.3, 0.4, 0.0],
            ]
        ],
        np.float32,
    )
    path = str(tmp_path / 'n.npy')
    np.save(path, stored)
    # the reference: values as stored, valid where the components' sum != 0
    as_stored = decode_npy_normals(path, (1, 4), normals_gt='stored')
    np.testing.assert_array_equal(as_stored[0, [0, 3]], stored[0, [0, 3]])
    assert (as_stored[0, [1, 2]] == 0).all()
    unit = decode_npy_normals(path, (1, 4), normals_gt='unit')
    np.testing.assert_allclose(
        unit[0],
        [[0, 0, 1], [0.5**0.5, -(0.5**0.5), 0], [0, 0, 0], [0.6, 0.8, 0]],
        atol=1e-6,
    )
    with pytest.raises(ValueError, match='normals_gt'):
        decode_npy_normals(path, (1, 4), normals_gt='raw')
    root, _ = nyuv2_root
    with pytest.raises(ValueError, match='normals_gt'):
        NYUv2Dataset(data_root=root, split='train', normals_gt='raw')
    for mode in ('stored', 'unit'):
        dataset = NYUv2Dataset(
            data_root=root, split='train', pipeline=LOAD, normals_gt=mode
        )
        entry = dataset.get_data_info(0)['ann_info']['normals']
        assert entry['normals_gt'] == mode
    cfg = load_config(config_path('nyuv2'))
    assert cfg.train_dataloader.dataset.normals_gt == 'stored'
    assert cfg.val_dataloader.dataset.normals_gt == 'stored'
