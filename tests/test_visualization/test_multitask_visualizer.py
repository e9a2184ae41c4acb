"""MultiTaskVisualizer's panel: layout, sizes, tile contents, outputs."""

import glob
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from ctal_mm.structures import TASK_KINDS, MultiTaskDataSample, TaskKind
from ctal_mm.visualization import (
    TASK_DRAWERS,
    DrawStyle,
    MultiTaskVisualizer,
    TaskDrawing,
    get_task_drawer,
)
from ctal_mm.visualization.panel import (
    PLACEHOLDER_COLOUR,
    gap_width,
    title_height,
)

H, W = 32, 40
PALETTE = [[0, 0, 0], [220, 20, 60], [0, 128, 255]]


def make_sample(tasks=('semseg', 'depth', 'normals'), with_pred=True):
    gen = torch.Generator().manual_seed(0)
    sample = MultiTaskDataSample(metainfo=dict(img_path='a/0001.png'))
    maps = {
        'semseg': lambda: torch.randint(0, 3, (1, H, W), generator=gen),
        'depth': lambda: torch.rand(1, H, W, generator=gen) * 5 + 0.5,
        'normals': lambda: torch.nn.functional.normalize(
            torch.randn(3, H, W, generator=gen), dim=0
        ),
        'edge': lambda: torch.randint(0, 2, (1, H, W), generator=gen),
        'saliency': lambda: torch.randint(0, 2, (1, H, W), generator=gen),
    }
    for task in tasks:
        sample.set_gt(task, maps[task]())
        if with_pred:
            pred = maps[task]()
            if task in ('edge', 'saliency'):
                pred = pred.float() * 0.7
            sample.set_pred(task, pred)
    return sample


def make_visualizer(**kwargs):
    vis = MultiTaskVisualizer(**kwargs)
    vis.dataset_meta = dict(classes=['bg', 'chair', 'table'], palette=PALETTE)
    return vis


def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def tile_at(panel, row, col, n_cols, header=False):
    """The picture of grid cell (row, col); with a header, row -1 is the centred image."""
    bar, gap = title_height(H), gap_width(H)
    r = row + (1 if header else 0)
    y = gap + r * (bar + H + gap) + bar
    if row == -1:
        x = (panel.shape[1] - W) // 2
    else:
        x = gap + col * (W + gap)
    return panel[y : y + H, x : x + W]


def expected_size(n_rows, n_cols):
    bar, gap = title_height(H), gap_width(H)
    return (
        n_rows * (H + bar) + (n_rows + 1) * gap,
        n_cols * W + (n_cols + 1) * gap,
    )


def test_gt_and_pred_panel_has_image_on_top_and_a_row_per_task():
    vis = make_visualizer(alpha=0.5)
    sample = make_sample()
    img = image()
    panel = vis.add_datasample('s', img, sample, with_labels=False)
    # header + 3 task rows, columns gt | pred
    assert panel.shape == expected_size(4, 2) + (3,)
    np.testing.assert_array_equal(tile_at(panel, -1, 0, 2, True), img)
    kinds = {'semseg': 'segmentation', 'depth': 'depth', 'normals': 'normals'}
    for row, task in enumerate(['semseg', 'depth', 'normals']):
        maps = {
            'gt': sample.gt(task).numpy(),
            'pred': sample.pred(task).numpy(),
        }
        style = DrawStyle(
            task=task, palette=np.array(PALETTE), alpha=0.5, with_labels=False
        )
        drawer = TASK_KINDS[kinds[task]].drawer
        tiles = get_task_drawer(drawer)(img, maps, style).tiles
        for col, role in enumerate(['gt', 'pred']):
            np.testing.assert_array_equal(
                tile_at(panel, row, col, 2, True), tiles[role]
            )
        # different maps, different pictures
        assert (tiles['gt'] != tiles['pred']).any()


def test_identical_gt_and_pred_give_identical_tiles():
    sample = make_sample(('semseg', 'depth'), with_pred=False)
    for task in ('semseg', 'depth'):
        sample.set_pred(task, sample.gt(task).clone())
    panel = make_visualizer().add_datasample('s', image(), sample)
    for row in range(2):
        np.testing.assert_array_equal(
            tile_at(panel, row, 0, 2, True), tile_at(panel, row, 1, 2, True)
        )


@pytest.mark.parametrize('max_columns,grid', [(4, (2, 4)), (2, (3, 2))])
def test_gt_only_panel_fills_a_grid_of_image_and_tasks(max_columns, grid):
    tasks = ('semseg', 'depth', 'normals', 'edge', 'saliency')
    sample = make_sample(tasks)
    vis = make_visualizer(max_columns=max_columns)
    panel = vis.add_datasample('s', image(), sample, draw_pred=False)
    assert panel.shape == expected_size(*grid) + (3,)
    np.testing.assert_array_equal(tile_at(panel, 0, 0, grid[1]), image())


def test_sample_without_predictions_draws_gt_only():
    panel = make_visualizer().add_datasample(
        's', image(), make_sample(with_pred=False)
    )
    assert panel.shape == expected_size(1, 4) + (3,)


def test_missing_prediction_of_one_task_is_a_placeholder_tile():
    sample = make_sample(('semseg', 'depth'))
    del sample.pred_depth
    panel = make_visualizer().add_datasample('s', image(), sample)
    assert panel.shape == expected_size(3, 2) + (3,)
    missing = tile_at(panel, 1, 1, 2, True)
    share = (missing == PLACEHOLDER_COLOUR).all(axis=-1).mean()
    assert share > 0.8


def test_task_kinds_meta_lists_tasks_the_sample_lacks():
    sample = make_sample(('depth',), with_pred=False)
    sample.set_metainfo(
        dict(task_kinds=dict(semseg='segmentation', depth='depth'))
    )
    panel = make_visualizer(max_columns=4).add_datasample('s', image(), sample)
    # image, semseg (placeholder), depth
    assert panel.shape == expected_size(1, 3) + (3,)
    missing = tile_at(panel, 0, 1, 3)
    assert (missing == PLACEHOLDER_COLOUR).all(axis=-1).mean() > 0.8


def test_task_palette_comes_from_dataset_meta():
    sample = MultiTaskDataSample()
    sample.set_gt('human_parts', torch.ones(1, H, W, dtype=torch.long))
    vis = MultiTaskVisualizer(alpha=1.0)
    vis.dataset_meta = dict(human_parts_palette=[[0, 0, 0], [10, 200, 30]])
    panel = vis.add_datasample('s', image(), sample, with_labels=False)
    np.testing.assert_array_equal(tile_at(panel, 0, 1, 2)[5, 5], [10, 200, 30])


def test_image_is_resized_to_the_maps_and_accepts_chw_float():
    sample = make_sample(('depth',))
    big = torch.full((3, 2 * H, 2 * W), 200.0)
    panel = make_visualizer().add_datasample('s', big, sample)
    assert panel.shape == expected_size(2, 2) + (3,)
    assert (tile_at(panel, -1, 0, 2, True) == 200).all()


def test_maps_of_another_size_are_resized_to_the_first_map():
    sample = make_sample(('semseg',), with_pred=False)
    sample.set_gt('depth', torch.ones(1, H // 2, W // 2))
    panel = make_visualizer(max_columns=3).add_datasample('s', image(), sample)
    assert panel.shape == expected_size(1, 3) + (3,)


def test_unknown_task_kind_names_the_fix():
    sample = MultiTaskDataSample()
    sample.set_gt('albedo', torch.zeros(1, H, W))
    with pytest.raises(KeyError, match="kind='segmentation'"):
        make_visualizer().add_datasample('s', image(), sample)


def test_a_new_kind_is_one_drawer(monkeypatch):
    monkeypatch.setitem(
        TASK_KINDS, 'heat', TaskKind('heat', 1, -1.0, is_label=False)
    )

    def draw_heat(img, maps, style):
        return TaskDrawing(
            {r: np.full(img.shape, 7, np.uint8) for r in maps}, note='hot'
        )

    monkeypatch.setitem(TASK_DRAWERS, 'heat', draw_heat)
    sample = MultiTaskDataSample(metainfo=dict(task_kinds=dict(temp='heat')))
    sample.set_gt('temp', torch.zeros(1, H, W))
    panel = make_visualizer().add_datasample('s', image(), sample)
    assert (tile_at(panel, 0, 1, 2) == 7).all()


def test_out_file_and_backends(tmp_path):
    vis = make_visualizer(
        vis_backends=[dict(type='LocalVisBackend')], save_dir=str(tmp_path)
    )
    sample = make_sample(('semseg', 'edge'))
    out = tmp_path / 'panels' / 'one.png'
    panel = vis.add_datasample('s', image(), sample, out_file=str(out))
    written = cv2.imread(str(out))[..., ::-1]
    np.testing.assert_array_equal(written, panel)
    assert not glob.glob(str(tmp_path / 'vis_data' / 'vis_image' / '*.png'))

    vis.add_datasample('val_x', image(), sample, step=7)
    files = glob.glob(str(tmp_path / 'vis_data' / 'vis_image' / '*.png'))
    assert [osp.basename(f) for f in files] == ['val_x_7.png']
    assert cv2.imread(files[0]).shape == panel.shape
    np.testing.assert_array_equal(vis.get_image(), panel)


def test_no_data_sample_draws_the_image_alone():
    panel = make_visualizer().add_datasample('s', image())
    assert panel.shape == expected_size(1, 1) + (3,)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='alpha'):
        MultiTaskVisualizer(alpha=2)
    with pytest.raises(ValueError, match='H x W x 3'):
        make_visualizer().add_datasample('s', np.zeros((4, 5, 6, 7)))
