"""Property tests of the transforms and the data preprocessor over random sizes, scales,
ignore layouts and task subsets: every output keeps the task maps aligned with the image and
each other and within their kind's value range, or raises the documented error."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctal_mm.datasets.transforms import (
    MultiTaskPad,
    MultiTaskPhotoMetricDistortion,
    MultiTaskRandomCrop,
    MultiTaskRandomFlip,
    MultiTaskRandomResize,
    PackMultiTaskInputs,
)
from ctal_mm.models.data_preprocessor import MultiTaskDataPreProcessor
from ctal_mm.structures import IGNORE_INDEX, get_task_kind

# every task name the project knows by default, with its kind
KINDS = dict(
    semseg='segmentation',
    human_parts='segmentation',
    depth='depth',
    normals='normals',
    edge='edge',
    saliency='saliency',
)
CLASSES = dict(semseg=13, human_parts=7)
NORMAL = np.array([0.6, 0.0, 0.8], np.float32)
# An anchor task every sample carries: the pixel's id + 256 (never 255, the ignore value), so
# any misalignment between maps shows; nearest-neighbour resizing keeps ids exact.
ANCHOR = 'pixel_id'
OFFSET = 256

TASK_SUBSETS = st.sets(st.sampled_from(sorted(KINDS)), min_size=1)
IGNORE_LAYOUTS = st.sampled_from(
    ['none', 'random', 'all', 'border', 'stripes']
)


def _ignore_mask(layout, h, w, rng):
    mask = np.zeros((h, w), bool)
    if layout == 'random':
        mask = rng.random((h, w)) < 0.3
    elif layout == 'all':
        mask[:] = True
    elif layout == 'border':
        mask[0], mask[-1], mask[:, 0], mask[:, -1] = True, True, True, True
    elif layout == 'stripes':
        mask[:, ::3] = True
    return mask


def make_results(tasks, h, w, layout, seed):
    """The image and the maps of ``tasks`` derived from pixel ids, ``layout`` ignored."""
    rng = np.random.default_rng(seed)
    ids = np.arange(h * w).reshape(h, w)
    ignored = _ignore_mask(layout, h, w, rng)
    maps = dict(
        semseg=ids % CLASSES['semseg'],
        human_parts=(ids // 7) % CLASSES['human_parts'],
        edge=ids % 2,
        saliency=(ids // 3) % 2,
    )
    results = dict(
        img=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        img_shape=(h, w),
        ori_shape=(h, w),
        task_kinds={t: KINDS[t] for t in tasks} | {ANCHOR: 'segmentation'},
    )
    results[f'gt_{ANCHOR}'] = (ids + OFFSET).astype(np.int32)
    for task in tasks:
        if task in maps:
            gt = maps[task].astype(np.uint8)
            gt[ignored] = IGNORE_INDEX
        elif task == 'depth':
            gt = (ids + 1).astype(np.float32)
            gt[ignored] = 0
        else:
            gt = np.broadcast_to(NORMAL, (h, w, 3)).copy()
            gt[ignored] = 0
        results[f'gt_{task}'] = gt
    return results


def check_maps(maps, tasks, shape, depth_scale=1.0, flipped=False):
    """Shapes, value ranges per kind, and alignment with the anchor.

    ``maps``: task -> H x W (x C) numpy array.
    """
    anchor = maps[ANCHOR]
    assert anchor.shape[:2] == tuple(shape)
    labelled = anchor != IGNORE_INDEX  # not padding
    ids = anchor.astype(np.int64) - OFFSET
    for task in tasks:
        gt = maps[task]
        assert gt.shape[:2] == tuple(shape), task
        kind = get_task_kind(task, KINDS)
        if kind.name == 'segmentation':
            values = gt[gt != IGNORE_INDEX]
            assert values.min(initial=0) >= 0
            assert values.max(initial=0) < CLASSES[task]
        elif kind.name in ('edge', 'saliency'):
            assert np.isin(gt, (0, 1, IGNORE_INDEX)).all()
        elif kind.name == 'depth':
            assert np.isfinite(gt).all() and (gt >= 0).all()
        else:
            norm = np.linalg.norm(gt, axis=-1)
            assert np.all((np.abs(norm - 1) < 1e-5) | (norm == 0))
        # the pixel each map shows is the anchor's pixel
        if kind.is_label:
            valid = labelled & (gt != IGNORE_INDEX)
            expected = dict(
                semseg=ids % CLASSES['semseg'],
                human_parts=(ids // 7) % CLASSES['human_parts'],
                edge=ids % 2,
                saliency=(ids // 3) % 2,
            )[task]
            np.testing.assert_array_equal(gt[valid], expected[valid])
            assert (gt[~labelled] == IGNORE_INDEX).all()  # padding
        elif kind.name == 'depth':
            valid = gt > 0
            assert not (valid & ~labelled).any()
            recovered = np.rint(gt[valid] * depth_scale).astype(np.int64) - 1
            np.testing.assert_array_equal(recovered, ids[valid])
        else:
            valid = np.abs(gt).sum(-1) > 0
            assert not (valid & ~labelled).any()
            expected = NORMAL * np.float32([-1 if flipped else 1, 1, 1])
            np.testing.assert_allclose(
                gt[valid],
                np.broadcast_to(expected, gt[valid].shape),
                atol=1e-5,
            )
    # one ignore layout for every map: a pixel is ignored in all of them or none
    ignored = [
        (maps[t] == IGNORE_INDEX)
        if get_task_kind(t, KINDS).is_label
        else (np.abs(maps[t]).reshape(*shape, -1).sum(-1) == 0)
        for t in tasks
    ]
    for a in ignored[1:]:
        np.testing.assert_array_equal(a, ignored[0])


PIPELINE = dict(
    tasks=TASK_SUBSETS,
    h=st.integers(2, 40),
    w=st.integers(2, 40),
    layout=IGNORE_LAYOUTS,
    ratio=st.floats(0.4, 2.5),
    depth_mode=st.sampled_from(['keep', 'divide']),
    crop=st.tuples(st.integers(-2, 48), st.integers(-2, 48)),
    cat_max_ratio=st.sampled_from([1.0, 0.75]),
    flip=st.booleans(),
    pad=st.one_of(
        st.tuples(st.just('size'), st.integers(1, 56)),
        st.tuples(st.just('size_divisor'), st.integers(1, 16)),
    ),
    centre=st.booleans(),
    photometric=st.booleans(),
    seed=st.integers(0, 2**16),
)


def run_pipeline(tasks, h, w, layout, ratio, depth_mode, crop, cat_max_ratio, flip,
                 pad, centre, photometric, seed):  # fmt: skip
    np.random.seed(seed)
    results = make_results(tasks, h, w, layout, seed)
    results = MultiTaskRandomResize(
        ratio_range=(ratio, ratio), depth_mode=depth_mode
    )(results)
    sx, sy = results['scale_factor']
    if min(crop) <= 0:
        with pytest.raises(ValueError, match=r'crop_size=.*expected positive'):
            MultiTaskRandomCrop(crop)
        return None
    results = MultiTaskRandomCrop(crop, cat_max_ratio=cat_max_ratio)(results)
    results = MultiTaskRandomFlip(prob=float(flip))(results)
    if photometric:
        results = MultiTaskPhotoMetricDistortion()(results)
    results = MultiTaskPad(
        **{pad[0]: pad[1]}, mode='centre' if centre else 'bottom_right'
    )(results)
    scale = np.sqrt(sx * sy) if depth_mode == 'divide' else 1.0
    return results, scale


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(**PIPELINE)
def test_pipelines_keep_every_task_aligned_and_in_range(**params):
    out = run_pipeline(**params)
    if out is None:
        return
    results, scale = out
    tasks = sorted(params['tasks'])
    maps = {t: results[f'gt_{t}'] for t in tasks + [ANCHOR]}
    shape = results['img'].shape[:2]
    check_maps(maps, tasks, shape, depth_scale=scale, flipped=results['flip'])
    pad_kind, pad_value = params['pad']
    if pad_kind == 'size':
        assert shape[0] >= pad_value and shape[1] >= pad_value
    else:
        assert shape[0] % pad_value == 0 and shape[1] % pad_value == 0


def _packed_maps(sample, tasks):
    return {
        t: sample.gt(t).numpy().transpose(1, 2, 0).squeeze(-1)
        if sample.gt(t).shape[0] == 1
        else sample.gt(t).numpy().transpose(1, 2, 0)
        for t in tasks
    }


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    tasks=TASK_SUBSETS,
    sizes=st.lists(
        st.tuples(st.integers(2, 24), st.integers(2, 24)),
        min_size=1,
        max_size=3,
    ),
    layout=IGNORE_LAYOUTS,
    size=st.one_of(
        st.none(), st.tuples(st.integers(1, 32), st.integers(1, 32))
    ),
    size_divisor=st.one_of(st.none(), st.integers(1, 8)),
    centre=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_the_preprocessor_pads_every_map_with_its_ignore_value(
    tasks, sizes, layout, size, size_divisor, centre, seed
):
    tasks = sorted(tasks)
    packed = [
        PackMultiTaskInputs()(make_results(tasks, h, w, layout, seed + i))
        for i, (h, w) in enumerate(sizes)
    ]
    originals = [
        _packed_maps(p['data_samples'], tasks + [ANCHOR]) for p in packed
    ]
    pre = MultiTaskDataPreProcessor(
        mean=[0, 0, 0],
        std=[255, 255, 255],
        size=size,
        size_divisor=size_divisor,
        pad_mode='centre' if centre else 'bottom_right',
        mixed_sizes='allow',  # the sizes are mixed on purpose: padding is what is tested
    )
    out = pre(
        dict(
            inputs=[p['inputs'] for p in packed],
            data_samples=[p['data_samples'] for p in packed],
        ),
        training=True,
    )
    inputs = out['inputs']
    H, W = inputs.shape[-2:]
    assert H >= max(h for h, _ in sizes) and W >= max(w for _, w in sizes)
    if size is not None:
        assert H >= size[0] and W >= size[1]
    if size_divisor:
        assert H % size_divisor == 0 and W % size_divisor == 0
    for sample, original, packed_one in zip(
        out['data_samples'], originals, packed
    ):
        maps = _packed_maps(sample, tasks + [ANCHOR])
        check_maps(maps, tasks, (H, W))
        left, right, top, bottom = sample.metainfo['padding_size']
        h, w = original[ANCHOR].shape[:2]
        assert (top + h + bottom, left + w + right) == (H, W)
        for task in tasks + [ANCHOR]:
            np.testing.assert_array_equal(
                maps[task][top : top + h, left : left + w], original[task]
            )
        image = inputs[out['data_samples'].index(sample)]
        torch.testing.assert_close(
            image[:, top : top + h, left : left + w],
            packed_one['inputs'].float() / 255,
        )


@given(
    h=st.integers(2, 12),
    w=st.integers(2, 12),
    task=st.sampled_from(sorted(KINDS)),
    dh=st.integers(-1, 1).filter(bool),
)
@settings(max_examples=20, deadline=None)
def test_a_map_that_does_not_follow_the_image_is_refused(h, w, task, dh):
    results = make_results([task], h, w, 'none', 0)
    results[f'gt_{task}'] = np.resize(
        results[f'gt_{task}'], (h + dh, w) + results[f'gt_{task}'].shape[2:]
    )
    with pytest.raises(ValueError, match=rf'gt_{task} is \({h + dh}, {w}\)'):
        PackMultiTaskInputs()(results)


@given(
    low=st.floats(-1.0, 3.0),
    high=st.floats(-1.0, 3.0),
    prob=st.floats(-0.5, 1.5),
    mode=st.text(min_size=1, max_size=8),
)
@settings(max_examples=30, deadline=None)
def test_invalid_parameters_raise_the_documented_errors(low, high, prob, mode):
    if not 0 < low <= high:
        with pytest.raises(ValueError, match='ratio_range='):
            MultiTaskRandomResize(ratio_range=(low, high))
    if not 0 <= prob <= 1:
        with pytest.raises(ValueError, match='expected a probability'):
            MultiTaskRandomFlip(prob=prob)
    if mode not in ('bottom_right', 'centre'):
        with pytest.raises(ValueError, match='pad mode'):
            MultiTaskPad(size=4, mode=mode)
        with pytest.raises(ValueError, match='pad_mode='):
            MultiTaskDataPreProcessor(pad_mode=mode)
