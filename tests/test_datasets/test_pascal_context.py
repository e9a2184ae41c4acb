"""PASCAL-Context (PASCAL_MT layout): every task's map, the parts cache, configs, bad input."""

import json
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import scipy.io
import torch
from dataset_layouts import (
    CONTEXT_CLASSES,
    PASCAL_IDS,
    config_path,
    make_pascal,
    write_parts_mat,
)
from PIL import Image

from ctal_mm.datasets import DataFileError, PascalContextMTDataset
from ctal_mm.datasets.morphology import thin
from ctal_mm.datasets.pascal_context import (
    HUMAN_PART_GROUPS,
    NYU_COMPATIBLE_CONTEXT_CLASSES,
)
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import DATASETS

LOAD = [
    dict(type='LoadMultiTaskImage'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]


def gt(dataset, index, task):
    return dataset[index]['data_samples'].gt(task)


def test_metainfo_and_facts():
    meta = PascalContextMTDataset.METAINFO
    assert len(meta['classes']) == len(meta['palette']) == 21
    assert meta['palette'][15] == [192, 128, 128]  # VOC's colour of person
    assert len(meta['human_parts_classes']) == 7
    assert sorted(set(HUMAN_PART_GROUPS.values())) == [1, 2, 3, 4, 5, 6]
    assert len(HUMAN_PART_GROUPS) == 24
    assert len(NYU_COMPATIBLE_CONTEXT_CLASSES) == 170
    assert 427 in NYU_COMPATIBLE_CONTEXT_CLASSES  # tvmonitor, added by hand
    assert 431 not in NYU_COMPATIBLE_CONTEXT_CLASSES  # unknown


def test_unknown_normals_gt_names_the_dataset(pascal_root):
    root, _ = pascal_root
    with pytest.raises(
        ValueError, match="PascalContextMTDataset: normals_gt='raw'"
    ):
        PascalContextMTDataset(
            data_root=root, split='val', pipeline=LOAD, normals_gt='raw'
        )


def test_every_task_map(pascal_root):
    root, written = pascal_root
    dataset = PascalContextMTDataset(
        data_root=root, split='val', pipeline=LOAD
    )
    assert len(dataset) == 3
    unit_dataset = PascalContextMTDataset(
        data_root=root, split='val', pipeline=LOAD, normals_gt='unit'
    )
    for index, image_id in enumerate(PASCAL_IDS):
        info = written[image_id]
        item = dataset[index]
        sample = item['data_samples']
        h, w = info['semseg'].shape
        assert item['inputs'].dtype == torch.uint8
        assert item['inputs'].shape == (3, h, w)
        assert sample.metainfo['img_path'].endswith(f'{image_id}.jpg')
        # semseg: VOC12 wins over the pascal-context decoy of the first image
        np.testing.assert_array_equal(
            sample.gt('semseg')[0].numpy(), info['semseg']
        )
        # human parts: grouped parts of people only; no part pixel -> all ignore
        np.testing.assert_array_equal(
            sample.gt('human_parts')[0].numpy(), info['human_parts']
        )
        # saliency: grey / 255 > 0.5
        saliency = sample.gt('saliency')[0].numpy()
        np.testing.assert_array_equal(saliency, (info['sal'] > 127.5))
        assert saliency[0, 0] == 0 and saliency[0, 1] == 1
        # normals: decoded, kept on the NYU-compatible classes (bands 0, 1),
        # as stored (the reference) or rescaled to unit length
        decoded = 2.0 * info['normals_png'] / 255.0 - 1.0
        keep = np.isin(info['label_map'], NYU_COMPATIBLE_CONTEXT_CLASSES)
        assert keep.any() and (~keep).any()
        unit = decoded / np.linalg.norm(decoded, axis=-1, keepdims=True)
        for item_, want in ((item, decoded), (unit_dataset[index], unit)):
            normals = item_['data_samples'].gt('normals').numpy()
            normals = normals.transpose(1, 2, 0)
            np.testing.assert_allclose(normals[keep], want[keep], atol=1e-5)
            assert (normals[~keep] == 0).all()
        # edges: one thinned line inside the Laplacian's support per band boundary
        edge = sample.gt('edge')[0].numpy()
        assert set(np.unique(edge)) <= {0, 1}
        lap = cv2.Laplacian(info['label_map'].astype(np.float64), cv2.CV_64F)
        assert not (edge.astype(bool) & (lap == 0)).any()
        for row in edge[2:-2]:
            assert row.sum() == len(CONTEXT_CLASSES) - 1


def test_edges_are_thin_and_keep_topology():
    bar = np.zeros((9, 20), bool)
    bar[3:6, 2:18] = True  # a 3-pixel-thick bar thins to a line
    line = thin(bar)
    assert line.sum() > 0 and (line.sum(axis=0) <= 1).all()
    assert not (line & ~bar).any()
    rng = np.random.default_rng(0)
    for _ in range(10):
        blobs = cv2.resize(
            (rng.random((4, 5)) > 0.5).astype(np.uint8),
            (30, 24),
            interpolation=cv2.INTER_NEAREST,
        ).astype(bool)
        skeleton = thin(blobs)
        assert not (skeleton & ~blobs).any()
        np.testing.assert_array_equal(thin(skeleton), skeleton)  # idempotent
        count = cv2.connectedComponents(blobs.astype(np.uint8), connectivity=8)
        kept = cv2.connectedComponents(
            skeleton.astype(np.uint8), connectivity=8
        )
        assert count[0] == kept[0]  # thinning never splits nor deletes a blob


def test_task_subset_and_human_parts_flags(pascal_root):
    root, written = pascal_root
    dataset = PascalContextMTDataset(
        data_root=root, tasks=('human_parts',), pipeline=LOAD
    )
    assert dataset.metainfo['task_kinds'] == dict(human_parts='segmentation')
    flags = [
        dataset.get_data_info(i)['ann_info']['human_parts']['has_person']
        for i in range(3)
    ]
    assert flags == [True, False, True]
    assert dataset[0]['data_samples'].gt_tasks == ['human_parts']


def test_parts_cache_is_rebuilt_and_written(tmp_path):
    root = str(tmp_path / 'PASCAL_MT')
    written = make_pascal(root, write_cache=False)
    cache = osp.join(root, 'ImageSets', 'Parts', 'train.txt')
    assert not osp.exists(cache)
    dataset = PascalContextMTDataset(data_root=root, tasks=('human_parts',))
    with open(cache) as f:
        assert json.load(f) == {
            i: written[i]['categories'] for i in PASCAL_IDS
        }
    assert (
        dataset.get_data_info(1)['ann_info']['human_parts']['has_person']
        is False
    )


def test_train_and_test_pipelines_of_the_base_config(pascal_root):
    root, written = pascal_root
    cfg = load_config(config_path('pascal_context'))
    cfg.train_dataloader.dataset.data_root = root
    train = DATASETS.build(cfg.train_dataloader.dataset)
    np.random.seed(0)
    for index in range(3):
        sample = train[index]['data_samples']
        assert sample.metainfo['img_shape'][0] <= 512
        # the pipeline does not pad: the preprocessor pads to 512 centred after
        # normalisation, with 0, as the reference does
        assert 'pad_shape' not in sample.metainfo or (
            sample.metainfo['pad_shape'] == sample.metainfo['img_shape']
        )
        # nearest resizing copies the stored vectors (x negated by a flip), as
        # the reference does
        image_id = osp.basename(sample.metainfo['img_path'])[:-4]
        stored = 2.0 * written[image_id]['normals_png'] / 255.0 - 1.0
        keep = np.isin(
            written[image_id]['label_map'], NYU_COMPATIBLE_CONTEXT_CLASSES
        )
        flipped = stored[keep] * np.array([-1.0, 1.0, 1.0])
        allowed = np.concatenate([stored[keep], flipped, np.zeros((1, 3))])
        h, w = sample.metainfo['img_shape']
        vectors = sample.gt('normals')[:, :h, :w].reshape(3, -1).T.numpy()
        gap = np.abs(vectors[:, None] - allowed[None]).max(-1).min(1)
        assert gap.max() < 1e-5
        # saliency and parts keep their value sets through resizing
        assert set(sample.gt('saliency').unique().tolist()) <= {0, 1, 255}
        parts = sample.gt('human_parts')
        assert set(parts.unique().tolist()) <= set(range(7)) | {255}
        # a crop without a part pixel is ignored whole (the reference)
        assert (parts == 255).all() or ((parts > 0) & (parts < 255)).any()
    cfg.val_dataloader.dataset.data_root = root
    val = DATASETS.build(cfg.val_dataloader.dataset)
    sample = val[1]['data_samples']
    assert (
        sample.metainfo['img_shape']
        == sample.metainfo['ori_shape']
        == (18, 26)
    )
    np.testing.assert_array_equal(
        sample.gt('semseg')[0].numpy(), written[PASCAL_IDS[1]]['semseg']
    )
    pre = cfg.data_preprocessor
    assert pre.test_cfg == dict(size=(512, 512), pad_mode='centre')
    assert (pre.size, pre.pad_val, pre.pad_mode) == ((512, 512), 0, 'centre')


# ------------------------------------------------------------------ bad input


def test_missing_split_list_and_files(pascal_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='data_root .* does not exist'):
        PascalContextMTDataset(data_root=str(tmp_path / 'nowhere'))
    root, _ = pascal_root
    os.remove(osp.join(root, 'ImageSets', 'Context', 'val.txt'))
    with pytest.raises(FileNotFoundError, match='val.txt does not exist'):
        PascalContextMTDataset(data_root=root, split='val')
    os.remove(osp.join(root, 'sal_distill', f'{PASCAL_IDS[2]}.png'))
    os.remove(
        osp.join(root, 'semseg', 'pascal-context', f'{PASCAL_IDS[1]}.png')
    )
    with pytest.raises(DataFileError) as error:
        PascalContextMTDataset(data_root=root, split='train')
    message = str(error.value)
    assert 'saliency: 1 of 3 missing' in message and PASCAL_IDS[2] in message
    assert 'semseg: 1 of 3 missing' in message
    # without those tasks the split loads
    assert len(PascalContextMTDataset(data_root=root, tasks=('edge',))) == 3


def corrupt(path, how):
    if how == 'garbage':
        with open(path, 'wb') as f:
            f.write(b'this is not the file you are looking for')
    else:
        size = osp.getsize(path)
        with open(path, 'r+b') as f:
            f.truncate(size // 2)


@pytest.mark.parametrize(
    'relative, how, task, message',
    [
        ('JPEGImages/{}.jpg', 'truncate', 'semseg', 'not a readable image'),
        (
            'pascal-context/trainval/{}.mat',
            'garbage',
            'edge',
            'not a readable .mat',
        ),
        (
            'pascal-context/trainval/{}.mat',
            'garbage',
            'normals',
            'not a readable .mat',
        ),
        (
            'human_parts/{}.mat',
            'truncate',
            'human_parts',
            'not a readable .mat',
        ),
        (
            'semseg/pascal-context/{}.png',
            'garbage',
            'semseg',
            'not a readable image',
        ),
        ('sal_distill/{}.png', 'truncate', 'saliency', 'not a readable image'),
    ],
)
def test_corrupt_files_name_the_file(
    pascal_root, relative, how, task, message
):
    root, _ = pascal_root
    path = osp.join(root, relative.format(PASCAL_IDS[2]))
    corrupt(path, how)
    dataset = PascalContextMTDataset(
        data_root=root, tasks=(task,), pipeline=LOAD
    )
    dataset[0]
    with pytest.raises(DataFileError, match=re.escape(path) + '.*' + message):
        dataset[2]


def test_wrong_contents_name_the_file(pascal_root):
    root, _ = pascal_root
    image_id = PASCAL_IDS[1]
    semseg = osp.join(root, 'semseg', 'pascal-context', f'{image_id}.png')
    Image.fromarray(np.zeros((18, 26, 3), np.uint8)).save(semseg)
    label_map = osp.join(root, 'pascal-context', 'trainval', f'{image_id}.mat')
    scipy.io.savemat(label_map, {'LabelMap': np.zeros((5, 5), np.uint16)})
    # the third image has a person (in the parts cache): give it an unknown part
    parts = osp.join(root, 'human_parts', f'{PASCAL_IDS[2]}.mat')
    full = np.ones((22, 22), bool)
    write_parts_mat(parts, [(15, full, [('tail', full)])])
    for task, index, path, message in (
        (
            'semseg',
            1,
            semseg,
            r'shape \(18, 26, 3\); expected .*single-channel',
        ),
        ('edge', 1, label_map, r'shape \(5, 5\); expected a 18 x 26'),
        ('human_parts', 2, parts, "part 'tail' is not a PASCAL-Part person"),
    ):
        loader = PascalContextMTDataset(
            data_root=root, tasks=(task,), pipeline=LOAD
        )
        with pytest.raises(
            DataFileError, match=re.escape(path) + '.*' + message
        ):
            loader[index]
    scipy.io.savemat(label_map, {'Other': np.zeros((18, 26))})
    with pytest.raises(
        DataFileError, match=r"no variable\(s\) \['LabelMap'\]"
    ):
        PascalContextMTDataset(data_root=root, tasks=('edge',), pipeline=LOAD)[
            1
        ]


def test_bad_parts_cache(pascal_root):
    root, _ = pascal_root
    cache = osp.join(root, 'ImageSets', 'Parts', 'val.txt')
    with open(cache, 'w') as f:
        f.write('{"2008_000001": [15],')
    with pytest.raises(
        DataFileError, match=re.escape(cache) + '.*not valid JSON'
    ):
        PascalContextMTDataset(data_root=root, split='val')
