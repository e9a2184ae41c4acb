"""Transforms move every task map together, each according to its kind."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ctal_mm.datasets.transforms import (
    MultiTaskPad,
    MultiTaskPhotoMetricDistortion,
    MultiTaskRandomCrop,
    MultiTaskRandomFlip,
    MultiTaskRandomResize,
    MultiTaskResize,
    PackMultiTaskInputs,
)
from ctal_mm.registry import TRANSFORMS

KINDS = dict(
    semseg='segmentation',
    saliency='saliency',
    depth='depth',
    normals='normals',
)
NORMAL = np.array([0.6, 0.0, 0.8], np.float32)


def id_results(h, w, seed=0):
    """Maps derived from one pixel-id map, so any misalignment shows.

    semseg = id % 250, saliency = semseg % 2, depth = id + 1 (0 on some invalid pixels, where
    the normals are all-zero too), normals = NORMAL elsewhere.
    """
    rng = np.random.default_rng(seed)
    ids = np.arange(h * w).reshape(h, w)
    invalid = rng.random((h, w)) < 0.2
    depth = (ids + 1).astype(np.float32)
    depth[invalid] = 0
    normals = np.broadcast_to(NORMAL, (h, w, 3)).copy()
    normals[invalid] = 0
    semseg = (ids % 250).astype(np.uint8)
    return dict(
        img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        img_shape=(h, w),
        ori_shape=(h, w),
        task_kinds=dict(KINDS),
        gt_semseg=semseg,
        gt_saliency=(semseg % 2).astype(np.uint8),
        gt_depth=depth,
        gt_normals=normals,
    )


def check_aligned(results, depth_scale=1.0):
    """The derived maps still agree pixel by pixel; padding holds the ignore values."""
    semseg = results['gt_semseg']
    assert results['img'].shape[:2] == semseg.shape
    for key in ('gt_saliency', 'gt_depth', 'gt_normals'):
        assert results[key].shape[:2] == semseg.shape
    labelled = semseg != 255
    np.testing.assert_array_equal(
        results['gt_saliency'][labelled], semseg[labelled] % 2
    )
    assert (results['gt_saliency'][~labelled] == 255).all()
    depth = results['gt_depth']
    valid = depth > 0
    assert not (valid & ~labelled).any()  # padding: depth 0
    ids = np.rint(depth[valid] * depth_scale).astype(np.int64) - 1
    np.testing.assert_array_equal(ids % 250, semseg[valid])
    normals = results['gt_normals']
    zero = (normals == 0).all(-1)
    np.testing.assert_array_equal(zero, ~valid)
    x_sign = -1 if results.get('flip') else 1
    expected = NORMAL * np.array([x_sign, 1, 1], np.float32)
    np.testing.assert_allclose(
        normals[valid],
        np.broadcast_to(expected, normals[valid].shape),
        atol=1e-6,
    )


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(3, 40),
    w=st.integers(3, 40),
    ratio=st.floats(0.5, 2.0),
    crop=st.tuples(st.integers(2, 48), st.integers(2, 48)),
    flip=st.booleans(),
    centre=st.booleans(),
    depth_mode=st.sampled_from(['keep', 'divide']),
    seed=st.integers(0, 2**16),
)
def test_resize_crop_flip_pad_keep_all_maps_aligned(
    h, w, ratio, crop, flip, centre, depth_mode, seed
):
    np.random.seed(seed)
    results = id_results(h, w, seed)
    results = MultiTaskRandomResize(
        ratio_range=(ratio, ratio), depth_mode=depth_mode
    )(results)
    sx, sy = results['scale_factor']
    new_h, new_w = results['img_shape']
    assert (new_h, new_w) == (
        max(1, round(h * ratio)),
        max(1, round(w * ratio)),
    )
    assert np.isclose(sx, new_w / w) and np.isclose(sy, new_h / h)
    results = MultiTaskRandomCrop(crop, cat_max_ratio=0.75)(results)
    assert results['img_shape'] == (min(crop[0], new_h), min(crop[1], new_w))
    results = MultiTaskRandomFlip(prob=float(flip))(results)
    assert results['flip'] is flip
    results = MultiTaskPad(
        size=(48, 48), mode='centre' if centre else 'bottom_right'
    )(results)
    assert results['img'].shape[:2] == (48, 48)
    scale = np.sqrt(sx * sy) if depth_mode == 'divide' else 1.0
    check_aligned(results, depth_scale=scale)


@settings(max_examples=20, deadline=None)
@given(
    h=st.integers(2, 30),
    w=st.integers(2, 30),
    ratio=st.floats(0.3, 3.0),
    seed=st.integers(0, 2**16),
)
def test_resized_normals_stay_unit_or_zero(h, w, ratio, seed):
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(h, w, 3)).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    normals[rng.random((h, w)) < 0.3] = 0
    results = dict(
        img=np.zeros((h, w, 3), np.uint8),
        task_kinds=dict(normals='normals'),
        gt_normals=normals,
    )
    out = MultiTaskResize(scale_factor=ratio)(results)['gt_normals']
    norm = np.linalg.norm(out, axis=-1)
    assert np.all((np.abs(norm - 1) < 1e-5) | (norm == 0))


def test_flip_twice_is_identity_and_negates_normal_x():
    results = id_results(7, 9)
    rng = np.random.default_rng(1)
    results['gt_normals'] = rng.normal(size=(7, 9, 3)).astype(np.float32)
    original = {
        k: np.copy(v)
        for k, v in results.items()
        if k.startswith(('gt_', 'img'))
    }
    once = MultiTaskRandomFlip.flip(
        dict(results, **{k: v.copy() for k, v in original.items()})
    )
    np.testing.assert_array_equal(
        once['gt_semseg'], original['gt_semseg'][:, ::-1]
    )
    np.testing.assert_array_equal(
        once['gt_normals'][..., 0], -original['gt_normals'][:, ::-1, 0]
    )
    np.testing.assert_array_equal(
        once['gt_normals'][..., 1:], original['gt_normals'][:, ::-1, 1:]
    )
    twice = MultiTaskRandomFlip.flip(once)
    for key, value in original.items():
        np.testing.assert_array_equal(twice[key], value)
    flip = MultiTaskRandomFlip(prob=1.0)
    state = flip(flip(id_results(4, 5)))
    assert state['flip'] is False and state['flip_direction'] is None


def test_depth_is_divided_by_the_scale_factor_or_kept():
    results = dict(
        img=np.zeros((4, 4, 3), np.uint8),
        task_kinds=dict(depth='depth'),
        gt_depth=np.full((4, 4), 6.0, np.float32),
    )
    divided = MultiTaskResize(scale_factor=2.0)(dict(results))
    assert divided['gt_depth'].shape == (8, 8)
    np.testing.assert_allclose(divided['gt_depth'], 3.0)
    kept = MultiTaskResize(scale_factor=2.0, depth_mode='keep')(dict(results))
    np.testing.assert_allclose(kept['gt_depth'], 6.0)
    assert kept['gt_depth'].dtype == np.float32
    with pytest.raises(ValueError, match="depth_mode='half'"):
        MultiTaskResize(scale_factor=2.0, depth_mode='half')


def test_resize_to_a_scale_keeps_the_ratio():
    results = dict(img=np.zeros((20, 40, 3), np.uint8), task_kinds={})
    out = MultiTaskResize(scale=(100, 100))(dict(results))
    assert out['img_shape'] == (50, 100) and out['scale_factor'] == (2.5, 2.5)
    out = MultiTaskResize(scale=(100, 30), keep_ratio=False)(dict(results))
    assert out['img'].shape == (30, 100, 3)
    with pytest.raises(ValueError, match='exactly one of scale'):
        MultiTaskResize()


def test_crop_cat_max_ratio_rejects_single_class_windows():
    semseg = np.full((40, 40), 2, np.uint8)  # right half: one class
    semseg[:, :20] = (np.arange(20) // 4 % 2)[
        None, :
    ]  # left half: stripes of 0 and 1
    semseg[:, 18:22] = 255  # ignored pixels do not count
    crop = MultiTaskRandomCrop((10, 10), cat_max_ratio=0.75)
    plain = MultiTaskRandomCrop((10, 10))
    plain_single = 0

    def fresh():
        return dict(
            img=np.zeros((40, 40, 3), np.uint8),
            task_kinds=dict(semseg='segmentation'),
            gt_semseg=semseg.copy(),
        )

    for seed in range(30):
        np.random.seed(seed)
        window = crop(fresh())['gt_semseg']
        classes, counts = np.unique(window[window != 255], return_counts=True)
        assert len(classes) > 1 and counts.max() / counts.sum() < 0.75
        np.random.seed(seed)
        window = plain(fresh())['gt_semseg']
        plain_single += len(np.unique(window[window != 255])) == 1
    assert plain_single > 0  # without the ratio, single-class windows do occur
    with pytest.raises(KeyError, match="cat_max_task='human_parts'"):
        MultiTaskRandomCrop(5, 0.5, cat_max_task='human_parts')(fresh())


def test_pad_values_modes_and_padding_size():
    results = id_results(5, 6)
    out = MultiTaskPad(size=(9, 10), mode='centre', pad_val=7)(results)
    assert out['padding_size'] == (2, 2, 2, 2) and out['pad_shape'] == (9, 10)
    assert (out['img'][:2] == 7).all() and (out['img'][2:7, 2:8] != 7).any()
    assert (out['gt_semseg'][:, :2] == 255).all()
    assert (out['gt_saliency'][:, -2:] == 255).all()
    assert (out['gt_depth'][-2:] == 0).all() and (
        out['gt_normals'][:2] == 0
    ).all()
    np.testing.assert_array_equal(
        out['gt_semseg'][2:7, 2:8], id_results(5, 6)['gt_semseg']
    )
    out = MultiTaskPad(size_divisor=4)(out)
    assert out['img'].shape[:2] == (12, 12)
    assert out['padding_size'] == (2, 4, 2, 5)
    with pytest.raises(
        ValueError, match='exactly one of size and size_divisor'
    ):
        MultiTaskPad()
    with pytest.raises(ValueError, match="pad mode 'left'"):
        MultiTaskPad(size=4, mode='left')


@pytest.mark.parametrize('dtype', [np.uint8, np.float32])
def test_photometric_distortion_changes_only_the_image(dtype):
    results = id_results(8, 8)
    results['img'] = results['img'].astype(dtype)
    maps = {k: v.copy() for k, v in results.items() if k.startswith('gt_')}
    transform = TRANSFORMS.build(dict(type='MultiTaskPhotoMetricDistortion'))
    assert isinstance(transform, MultiTaskPhotoMetricDistortion)
    changed = False
    for seed in range(5):
        np.random.seed(seed)
        out = transform(dict(results, img=results['img'].copy()))
        assert out['img'].dtype == dtype and out['img'].shape == (8, 8, 3)
        assert out['img'].min() >= 0 and out['img'].max() <= 255
        changed |= not np.array_equal(out['img'], results['img'])
        for key, value in maps.items():
            np.testing.assert_array_equal(out[key], value)
    assert changed


def test_pack_gives_tensors_in_the_convention_and_meta():
    results = id_results(5, 6)
    results['img_path'] = 'a/b.jpg'
    results['sample_idx'] = 3
    packed = PackMultiTaskInputs()(results)
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.shape == (3, 5, 6) and inputs.dtype == torch.uint8
    assert sample.gt('semseg').dtype == torch.int64
    assert sample.gt('saliency').shape == (1, 5, 6)
    assert sample.gt('depth').dtype == torch.float32
    assert sample.gt('normals').shape == (3, 5, 6)
    np.testing.assert_array_equal(
        sample.gt('normals').numpy().transpose(1, 2, 0), results['gt_normals']
    )
    meta = sample.metainfo
    assert meta['img_path'] == 'a/b.jpg' and meta['sample_idx'] == 3
    assert meta['pad_shape'] == (5, 6) and meta['flip'] is False
    assert meta['scale_factor'] == (1.0, 1.0) and meta['task_kinds'] == KINDS
    assert 'padding_size' not in meta
    results['gt_depth'] = results['gt_depth'][:4]
    with pytest.raises(
        ValueError, match=r'gt_depth is \(4, 6\) but should be \(5, 6\)'
    ):
        PackMultiTaskInputs()(results)


# ------------------------------------------- the PASCAL reference's options
def test_nearest_normals_copy_the_stored_vectors_bilinear_blends_them():
    rng = np.random.default_rng(0)
    stored = rng.uniform(-1, 1, (6, 8, 3)).astype(np.float32)  # not unit
    stored[0, :2] = 0  # invalid
    results = dict(
        img=np.zeros((6, 8, 3), np.uint8),
        task_kinds=dict(normals='normals'),
        gt_normals=stored,
    )
    near = MultiTaskResize(scale_factor=1.7, normals_interpolation='nearest')
    out = near(dict(results))['gt_normals']
    assert out.shape == (10, 14, 3)
    # every vector is one of the stored ones (or an invalid zero)
    gap = np.abs(out.reshape(-1, 1, 3) - stored.reshape(1, -1, 3)).max(-1)
    assert gap.min(1).max() == 0
    assert (np.linalg.norm(out, axis=-1) > 1.01).any()  # kept as stored
    blend = MultiTaskResize(scale_factor=1.7)(dict(results))['gt_normals']
    norm = np.linalg.norm(blend, axis=-1)
    assert np.all((np.abs(norm - 1) < 1e-5) | (norm == 0))
    random = TRANSFORMS.build(
        dict(
            type='MultiTaskRandomResize',
            ratio_range=(1.7, 1.7),
            normals_interpolation='nearest',
        )
    )
    np.testing.assert_array_equal(random(dict(results))['gt_normals'], out)
    with pytest.raises(ValueError, match='normals_interpolation'):
        MultiTaskResize(scale_factor=2, normals_interpolation='cubic')


def _parts_results():
    """A 4 x 12 image whose only person (parts 1, 2) stands in its left third."""
    parts = np.zeros((4, 12), np.uint8)
    parts[1:3, 0:2] = 1
    parts[1:3, 2:4] = 2
    parts[0, 8] = 255  # an unlabelled pixel
    return dict(
        img=np.zeros((4, 12, 3), np.uint8),
        img_shape=(4, 12),
        task_kinds=dict(human_parts='segmentation', semseg='segmentation'),
        gt_human_parts=parts,
        gt_semseg=np.arange(48, dtype=np.uint8).reshape(4, 12) % 3,
    )


def test_a_crop_that_misses_the_person_ignores_its_parts_map():
    crop = MultiTaskRandomCrop(crop_size=(4, 6))
    reference = TRANSFORMS.build(dict(type='MultiTaskIgnoreEmptyLabels'))
    ours = TRANSFORMS.build(
        dict(type='MultiTaskIgnoreEmptyLabels', mode='full_image')
    )
    right = crop.crop(_parts_results(), (0, 4, 6, 12))  # top bottom left right
    assert right['gt_human_parts'].shape == (4, 6)
    assert set(np.unique(right['gt_human_parts'])) == {0, 255}
    semseg = right['gt_semseg'].copy()
    kept = ours(dict(right))['gt_human_parts']
    assert (kept == 0).sum() == 4 * 6 - 1  # trains as background
    out = reference(dict(right))
    assert (out['gt_human_parts'] == 255).all()  # ignored whole
    np.testing.assert_array_equal(out['gt_semseg'], semseg)  # others untouched
    left = crop.crop(_parts_results(), (0, 0, 6, 4))
    before = left['gt_human_parts'].copy()
    np.testing.assert_array_equal(reference(left)['gt_human_parts'], before)
    # through random crops: either a part pixel is left or the map is ignored
    np.random.seed(0)
    outcomes = set()
    for _ in range(30):
        parts = reference(crop(_parts_results()))['gt_human_parts']
        has_parts = bool(((parts > 0) & (parts < 255)).any())
        assert has_parts or (parts == 255).all()
        outcomes.add(has_parts)
    assert outcomes == {True, False}


def test_ignore_empty_labels_checks_its_arguments():
    with pytest.raises(ValueError, match='mode'):
        TRANSFORMS.build(dict(type='MultiTaskIgnoreEmptyLabels', mode='x'))
    depth = dict(
        task_kinds=dict(depth='depth'), gt_depth=np.zeros((2, 2), np.float32)
    )
    with pytest.raises(ValueError, match='not a label map'):
        TRANSFORMS.build(
            dict(type='MultiTaskIgnoreEmptyLabels', tasks=('depth',))
        )(depth)
    # a task the dataset does not load is skipped
    assert TRANSFORMS.build(dict(type='MultiTaskIgnoreEmptyLabels'))(depth)
