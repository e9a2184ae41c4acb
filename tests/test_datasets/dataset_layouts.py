"""Builders of tiny datasets in the real on-disk layouts (MTAN NYUv2 / Cityscapes, PASCAL_MT).

The fixtures that use them are in conftest.py.
"""

import json
import os
import os.path as osp

import numpy as np
import scipy.io
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def config_path(name: str) -> str:
    return osp.join(REPO, 'configs', '_base_', 'datasets', f'{name}.py')


# ---------------------------------------------------------------- MTAN (NYUv2, Cityscapes)


def write_mtan(root, split, folders, num, size, num_classes, seed=0):
    """Random MTAN-layout files; returns {folder: [arrays]} as written."""
    rng = np.random.default_rng(seed)
    h, w = size
    written = {folder: [] for folder in folders}
    for folder in folders:
        os.makedirs(osp.join(root, split, folder), exist_ok=True)
    for i in range(num):
        for folder in folders:
            if folder == 'image':
                array = rng.random((h, w, 3)).astype(np.float32)
            elif folder.startswith('label'):
                array = rng.integers(-1, num_classes, (h, w)).astype(
                    np.float32
                )
            elif folder == 'depth':
                array = rng.uniform(0.5, 10, (h, w, 1)).astype(np.float32)
                array[0, :3] = 0  # invalid pixels
            elif folder == 'normal':
                array = rng.normal(size=(h, w, 3)).astype(np.float32)
                array /= np.linalg.norm(array, axis=-1, keepdims=True)
                array[1, :2] = 0  # invalid pixels
            np.save(osp.join(root, split, folder, f'{i}.npy'), array)
            written[folder].append(array)
    return written


def nyuv2_tree(tmp_path):
    root = str(tmp_path / 'nyuv2')
    folders = ('image', 'label', 'depth', 'normal')
    arrays = write_mtan(root, 'train', folders, 3, (12, 16), 13, seed=0)
    write_mtan(root, 'val', folders, 2, (12, 16), 13, seed=1)
    return root, arrays


def cityscapes_tree(tmp_path):
    root = str(tmp_path / 'cityscapes')
    arrays = write_mtan(
        root, 'train', ('image', 'label_19', 'depth'), 2, (8, 16), 19
    )
    arrays.update(write_mtan(root, 'train', ('label_7',), 2, (8, 16), 7))
    write_mtan(
        root, 'val', ('image', 'label_19', 'label_7', 'depth'), 1, (8, 16), 7
    )
    return root, arrays


# ---------------------------------------------------------------- PASCAL_MT

PART_DTYPE = [('part_name', 'O'), ('mask', 'O')]
OBJECT_DTYPE = [
    ('class', 'O'),
    ('class_ind', 'O'),
    ('mask', 'O'),
    ('parts', 'O'),
]


def write_parts_mat(path, objects):
    """objects: [(category, mask, [(part_name, mask), ...] or None)]"""
    table = np.zeros((1, len(objects)), dtype=OBJECT_DTYPE)
    for k, (category, mask, parts) in enumerate(objects):
        if parts:
            part_table = np.zeros((1, len(parts)), dtype=PART_DTYPE)
            for j, (name, part_mask) in enumerate(parts):
                part_table[0, j] = (name, part_mask.astype(np.uint8))
        else:
            part_table = np.zeros((0, 0))
        table[0, k] = (
            'obj',
            np.array([[category]], dtype=np.uint8),
            mask.astype(np.uint8),
            part_table,
        )
    anno = np.zeros((1, 1), dtype=[('imname', 'O'), ('objects', 'O')])
    anno[0, 0] = ('image', table)
    scipy.io.savemat(path, {'anno': anno})


PASCAL_IDS = ('2008_000001', '2008_000002', '2008_000003')
PASCAL_SIZES = ((20, 24), (18, 26), (22, 22))
# LabelMap classes used: 158 floor and 440 wall are NYU-compatible, 2 aeroplane and 360 sky not
CONTEXT_CLASSES = (158, 440, 2, 360)


def make_pascal(root, write_cache=True):
    """A 3-image PASCAL_MT tree; returns a dict of what was written, per id."""
    rng = np.random.default_rng(0)
    written = {}
    for sub in (
        'JPEGImages',
        'semseg/VOC12',
        'semseg/pascal-context',
        'pascal-context/trainval',
        'human_parts',
        'normals_distill',
        'sal_distill',
        'ImageSets/Context',
        'ImageSets/Parts',
    ):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for n, (image_id, (h, w)) in enumerate(zip(PASCAL_IDS, PASCAL_SIZES)):
        info = {}
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(img).save(
            osp.join(root, 'JPEGImages', f'{image_id}.jpg'), quality=95
        )
        # LabelMap: four vertical bands of context classes
        label_map = np.zeros((h, w), dtype=np.uint16)
        for k, cls in enumerate(CONTEXT_CLASSES):
            label_map[:, k * w // 4 :] = cls
        scipy.io.savemat(
            osp.join(root, 'pascal-context', 'trainval', f'{image_id}.mat'),
            {'LabelMap': label_map},
        )
        info['label_map'] = label_map
        semseg = rng.integers(0, 21, (h, w)).astype(np.uint8)
        semseg[0, :4] = 255
        folder = 'VOC12' if n == 0 else 'pascal-context'
        Image.fromarray(semseg).save(
            osp.join(root, 'semseg', folder, f'{image_id}.png')
        )
        if n == 0:  # a decoy that must lose against VOC12
            Image.fromarray(np.zeros_like(semseg)).save(
                osp.join(root, 'semseg', 'pascal-context', f'{image_id}.png')
            )
        info['semseg'] = semseg
        normals_png = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(normals_png).save(
            osp.join(root, 'normals_distill', f'{image_id}.png')
        )
        info['normals_png'] = normals_png
        sal = rng.integers(0, 256, (h, w), dtype=np.uint8)
        sal[0, 0], sal[0, 1] = 127, 128  # 127/255 < 0.5 < 128/255
        Image.fromarray(sal).save(
            osp.join(root, 'sal_distill', f'{image_id}.png')
        )
        info['sal'] = sal
        full = np.ones((h, w), bool)
        if n == 0:  # a person with parts and a cat with parts
            head = np.zeros((h, w), bool)
            head[:3, :] = True
            torso = np.zeros((h, w), bool)
            torso[3:8, :] = True
            hand = np.zeros((h, w), bool)
            hand[8:10, :5] = True
            objects = [
                (
                    15,
                    full,
                    [('head', head), ('torso', torso), ('lhand', hand)],
                ),
                (8, full, [('head', np.ones((h, w), bool))]),
            ]
            parts = np.zeros((h, w), np.uint8)
            parts[head], parts[torso], parts[hand] = 1, 2, 4
            info['human_parts'] = parts
        elif n == 1:  # no person
            objects = [(8, full, None)]
            info['human_parts'] = np.full((h, w), 255, np.uint8)
        else:  # a person without part annotations
            objects = [(15, full, None)]
            info['human_parts'] = np.full((h, w), 255, np.uint8)
        write_parts_mat(
            osp.join(root, 'human_parts', f'{image_id}.mat'), objects
        )
        info['categories'] = [o[0] for o in objects]
        written[image_id] = info
    for split in ('train', 'val'):
        with open(
            osp.join(root, 'ImageSets', 'Context', f'{split}.txt'), 'w'
        ) as f:
            f.write('\n'.join(PASCAL_IDS) + '\n')
    if write_cache:
        cache = {i: written[i]['categories'] for i in PASCAL_IDS}
        for split in ('train', 'val'):
            with open(
                osp.join(root, 'ImageSets', 'Parts', f'{split}.txt'), 'w'
            ) as f:
                json.dump(cache, f)
    return written


# ---------------------------------------------------------------- NYUD-MT

NYUD_IDS = ('0003', '0007', '0012')
NYUD_SIZES = ((20, 24), (18, 26), (22, 22))
NYUD_SPLITS = dict(train=NYUD_IDS[:2], val=NYUD_IDS[1:])


def encode_png_normals(normals):
    """Unit vectors (0 = none) as the ATRC / InvPT PNGs hold them: round((n + 1) * 255 / 2)."""
    return np.clip(np.rint((normals + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_nyud_mt(root, layout='mtinet', seed=0):
    """A 3-image NYUD-MT tree in the MTI-Net ('mtinet') or ATRC / InvPT ('atrc') layout.

    Returns {id: dict(image, semseg, depth, normals, edge)}: the raw label PNG values
    (0 = unlabelled, 1..40), depth in metres (0 = none), unit normals (0 = none) and binary
    edges, as written.
    """
    rng = np.random.default_rng(seed)
    ext = dict(
        mtinet=dict(image='jpg', normals='npy', edge='npy'),
        atrc=dict(image='png', normals='png', edge='png'),
    )[layout]
    for sub in (
        'images',
        'segmentation',
        'depth',
        'normals',
        'edge',
        'gt_sets',
    ):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    written = {}
    for n, (image_id, (h, w)) in enumerate(zip(NYUD_IDS, NYUD_SIZES)):
        info = {}
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        image_path = osp.join(root, 'images', f'{image_id}.{ext["image"]}')
        Image.fromarray(img).save(
            image_path, **(dict(quality=95) if ext['image'] == 'jpg' else {})
        )
        info['image'] = img
        semseg = rng.integers(0, 41, (h, w)).astype(np.uint8)
        semseg[0, :3] = 0  # unlabelled
        semseg[1, :2] = (1, 40)  # the first and last class
        Image.fromarray(semseg).save(
            osp.join(root, 'segmentation', f'{image_id}.png')
        )
        info['semseg'] = semseg
        depth = rng.uniform(0.5, 9.5, (h, w)).astype(np.float32)
        depth[2, :4] = 0  # no measurement
        # the archives store H x W; one file as H x W x 1 exercises the other form
        np.save(
            osp.join(root, 'depth', f'{image_id}.npy'),
            depth[..., None] if n == 1 else depth,
        )
        info['depth'] = depth
        normals = rng.normal(size=(h, w, 3)).astype(np.float32)
        normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
        normals[3, :3] = 0  # no normal
        if ext['normals'] == 'npy':
            np.save(osp.join(root, 'normals', f'{image_id}.npy'), normals)
        else:
            Image.fromarray(encode_png_normals(normals)).save(
                osp.join(root, 'normals', f'{image_id}.png')
            )
        info['normals'] = normals
        edge = (rng.random((h, w)) > 0.8).astype(np.uint8)
        if ext['edge'] == 'npy':
            np.save(
                osp.join(root, 'edge', f'{image_id}.npy'),
                edge.astype(np.float32),
            )
        else:
            Image.fromarray(edge * 255).save(
                osp.join(root, 'edge', f'{image_id}.png')
            )
        info['edge'] = edge
        written[image_id] = info
    for split, ids in NYUD_SPLITS.items():
        with open(osp.join(root, 'gt_sets', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(ids) + '\n')
    return written
