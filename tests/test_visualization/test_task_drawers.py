"""Each task kind's drawing maps known inputs to known colours."""

import numpy as np
import pytest

from ctal_mm.structures import IGNORE_INDEX, TASK_KINDS, task_kind
from ctal_mm.visualization import (
    TASK_DRAWERS,
    DrawStyle,
    generated_palette,
    get_task_drawer,
    register_task_drawer,
)
from ctal_mm.visualization.task_drawers import (
    GRAY_MAP_IGNORE_COLOUR,
    colormap_lut,
)

H, W = 6, 8
GRAY_IMAGE = np.full((H, W, 3), 100, np.uint8)


def draw(kind, maps, **style):
    style = DrawStyle(task=style.pop('task', kind), **style)
    return get_task_drawer(task_kind(kind).drawer)(GRAY_IMAGE, maps, style)


def test_segmentation_blends_palette_colour_and_blacks_out_ignore():
    labels = np.zeros((1, H, W), np.int64)
    labels[0, :, 4:] = 1
    labels[0, 0, 0] = IGNORE_INDEX
    palette = np.array([[0, 0, 0], [200, 10, 50]], np.uint8)
    tile = draw(
        'segmentation',
        {'gt': labels},
        palette=palette,
        alpha=0.6,
        with_labels=False,
    ).tiles['gt']
    assert tile.shape == (H, W, 3) and tile.dtype == np.uint8
    # 100 * 0.4 + palette * 0.6
    np.testing.assert_array_equal(tile[3, 5], [160, 46, 70])
    np.testing.assert_array_equal(tile[3, 1], [40, 40, 40])
    np.testing.assert_array_equal(tile[0, 0], [0, 0, 0])


def test_segmentation_without_palette_uses_generated_colours():
    labels = np.arange(H * W, dtype=np.int64).reshape(1, H, W) % 20
    tile = draw(
        'segmentation', {'pred': labels}, alpha=1.0, with_labels=False
    ).tiles['pred']
    palette = generated_palette(20)
    np.testing.assert_array_equal(tile[0, 3], palette[3])
    np.testing.assert_array_equal(tile[2, 3], palette[(2 * W + 3) % 20])


def test_segmentation_extends_a_short_palette():
    labels = np.full((1, H, W), 5, np.int64)
    tile = draw(
        'segmentation',
        {'gt': labels},
        palette=np.array([[1, 2, 3]], np.uint8),
        alpha=1.0,
        with_labels=False,
    ).tiles['gt']
    np.testing.assert_array_equal(tile[0, 0], generated_palette(6)[5])


def test_generated_palette_is_deterministic_distinct_and_never_black():
    palette = generated_palette(60)
    np.testing.assert_array_equal(palette, generated_palette(60))
    assert len({tuple(c) for c in palette}) == 60
    assert (palette.max(axis=1) > 60).all()


def test_segmentation_writes_class_names_on_large_regions():
    labels = np.zeros((1, 64, 64), np.int64)
    labels[0, :, 32:] = 1
    image = np.full((64, 64, 3), 100, np.uint8)
    style = dict(task='semseg', classes=['wall', 'floor'], alpha=0.6)
    plain = get_task_drawer('segmentation')(
        image, {'gt': labels}, DrawStyle(with_labels=False, **style)
    ).tiles['gt']
    named = get_task_drawer('segmentation')(
        image, {'gt': labels}, DrawStyle(with_labels=True, **style)
    ).tiles['gt']
    changed = (plain != named).any(axis=-1)
    assert changed[:, :32].any() and changed[:, 32:].any()


def test_depth_shares_one_range_and_blacks_out_invalid():
    gt = np.full((1, H, W), 2.0, np.float32)
    gt[0, 0, 0] = 0.0  # no measurement
    gt[0, 1, :] = 1.0
    pred = np.full((1, H, W), 2.0, np.float32)
    pred[0, 2, :] = 5.0
    drawing = draw('depth', {'gt': gt, 'pred': pred}, colormap='viridis')
    lut = colormap_lut('viridis')
    assert drawing.extra['range'] == (1.0, 5.0)
    gt_tile, pred_tile = drawing.tiles['gt'], drawing.tiles['pred']
    np.testing.assert_array_equal(gt_tile[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(gt_tile[1, 0], lut[0])
    np.testing.assert_array_equal(pred_tile[2, 0], lut[255])
    # the same depth has the same colour in both tiles: 2 m = a quarter of the range
    np.testing.assert_array_equal(gt_tile[4, 4], pred_tile[4, 4])
    np.testing.assert_array_equal(gt_tile[4, 4], lut[round(0.25 * 255)])
    assert '1.00-5.00' in drawing.note


def test_depth_with_no_valid_pixel_is_black():
    drawing = draw('depth', {'gt': np.zeros((1, H, W), np.float32)})
    assert (drawing.tiles['gt'] == 0).all()


def test_normals_map_to_rgb_and_invalid_black():
    normals = np.zeros((3, H, W), np.float32)
    normals[2, 0, 0] = 1.0  # (0, 0, 1), facing the camera
    normals[0, 0, 1] = 1.0  # (1, 0, 0)
    normals[1, 0, 2] = -1.0  # (0, -1, 0)
    tile = draw('normals', {'gt': normals}).tiles['gt']
    np.testing.assert_array_equal(tile[0, 0], [128, 128, 255])
    np.testing.assert_array_equal(tile[0, 1], [255, 128, 128])
    np.testing.assert_array_equal(tile[0, 2], [128, 0, 128])
    np.testing.assert_array_equal(tile[3, 3], [0, 0, 0])


@pytest.mark.parametrize('kind', ['edge', 'saliency'])
def test_gray_maps_binary_gt_probability_pred_and_ignore(kind):
    gt = np.zeros((1, H, W), np.int64)
    gt[0, 1] = 1
    gt[0, 2] = IGNORE_INDEX
    pred = np.full((1, H, W), 0.5, np.float32)
    pred[0, 0, 0] = 1.0
    tiles = draw(kind, {'gt': gt, 'pred': pred}).tiles
    np.testing.assert_array_equal(tiles['gt'][0, 0], [0, 0, 0])
    np.testing.assert_array_equal(tiles['gt'][1, 0], [255, 255, 255])
    np.testing.assert_array_equal(tiles['gt'][2, 0], GRAY_MAP_IGNORE_COLOUR)
    np.testing.assert_array_equal(tiles['pred'][0, 0], [255, 255, 255])
    np.testing.assert_array_equal(tiles['pred'][3, 3], [128, 128, 128])


@pytest.mark.parametrize(
    'kind,shape',
    [
        ('segmentation', (13, H, W)),
        ('depth', (H, W)),
        ('normals', (1, H, W)),
        ('edge', (2, H, W)),
    ],
)
def test_wrong_map_shape_names_task_and_convention(kind, shape):
    with pytest.raises(ValueError, match=r'pred_mytask.*task_kinds\.py'):
        draw(kind, {'pred': np.zeros(shape)}, task='mytask')


def test_drawer_registry_rejects_duplicates_and_names_known_kinds():
    with pytest.raises(KeyError, match='already has a drawer'):
        register_task_drawer('depth')(lambda image, maps, style: None)
    with pytest.raises(KeyError, match='register_task_drawer'):
        get_task_drawer('no_such_kind')
    kinds = {'segmentation', 'depth', 'normals', 'edge', 'saliency'}
    assert kinds <= set(TASK_KINDS)
    assert {TASK_KINDS[k].drawer for k in TASK_KINDS} <= set(TASK_DRAWERS)
