"""MultiTaskVisualizationHook inside a tiny real Runner (val and test loops)."""

import glob
import os
import os.path as osp
import uuid

import cv2
import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from ctal_mm.engine.hooks import MultiTaskVisualizationHook
from ctal_mm.structures import MultiTaskDataSample
from ctal_mm.visualization.panel import gap_width, title_height

H, W = 16, 20


class TinyDataset(Dataset):
    """Samples with semseg and depth; images as PNG, .npy or only in memory."""

    metainfo = dict(classes=['a', 'b'], palette=[[255, 0, 0], [0, 0, 255]])

    def __init__(self, root, num=5, image_files='png'):
        self.root, self.num, self.image_files = root, num, image_files

    def __len__(self):
        return self.num

    def __getitem__(self, idx):
        rng = np.random.default_rng(idx)
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        meta = dict(sample_idx=idx, ori_shape=(H, W))
        if self.image_files == 'png':
            path = osp.join(self.root, f'img_{idx}.png')
            cv2.imwrite(path, img[..., ::-1])
            meta['img_path'] = path
        elif self.image_files == 'npy':
            path = osp.join(self.root, f'img_{idx}.npy')
            np.save(path, img.astype(np.float32) / 255)
            meta['img_path'] = path
        elif self.image_files == 'missing':
            meta['img_path'] = osp.join(self.root, 'gone', f'img_{idx}.png')
        sample = MultiTaskDataSample(metainfo=meta)
        sample.set_gt(
            'semseg', torch.from_numpy(rng.integers(0, 2, (1, H, W)))
        )
        sample.set_gt('depth', torch.from_numpy(rng.random((1, H, W))) + 1)
        inputs = torch.from_numpy(img).permute(2, 0, 1).contiguous()
        return dict(inputs=inputs, data_samples=sample)


class EchoModel(BaseModel):
    """Predicts the ground truth flipped left-right, so gt and pred differ."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        for sample in data_samples:
            for task in sample.gt_tasks:
                sample.set_pred(task, sample.gt(task).flip(-1))
        return data_samples


class CountMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.extend(1 for _ in data_samples)

    def compute_metrics(self, results):
        return dict(count=len(results))


def build_runner(tmp_path, hook_cfg, image_files='png', num=5):
    data_root = tmp_path / 'data'
    data_root.mkdir(exist_ok=True)
    loader = dict(
        dataset=TinyDataset(str(data_root), num, image_files),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=1,
        num_workers=0,
    )
    return Runner(
        model=EchoModel(),
        work_dir=str(tmp_path / 'work'),
        experiment_name=f'vis_hook_{uuid.uuid4().hex}',
        val_dataloader=loader,
        val_cfg=dict(),
        val_evaluator=[CountMetric()],
        test_dataloader=dict(loader, batch_size=2),
        test_cfg=dict(),
        test_evaluator=[CountMetric()],
        default_scope='ctal_mm',
        default_hooks=dict(
            visualization=dict(type='MultiTaskVisualizationHook', **hook_cfg)
        ),
        visualizer=dict(
            type='MultiTaskVisualizer',
            vis_backends=[dict(type='LocalVisBackend')],
        ),
        log_level='WARNING',
    )


def backend_images(tmp_path):
    pattern = str(tmp_path / 'work' / '**' / 'vis_image' / '*.png')
    return sorted(osp.basename(f) for f in glob.glob(pattern, recursive=True))


def test_val_draws_one_panel_every_interval_batches(tmp_path):
    runner = build_runner(tmp_path, dict(interval=2))
    runner.val()
    # batches 0, 2, 4 of 5, recorded at training iteration 0
    assert backend_images(tmp_path) == [
        'val_img_0_0.png',
        'val_img_2_0.png',
        'val_img_4_0.png',
    ]


def test_val_interval_zero_draws_nothing(tmp_path):
    build_runner(tmp_path, dict(interval=0)).val()
    assert backend_images(tmp_path) == []


def test_test_with_show_dir_writes_a_panel_per_sample(tmp_path):
    show_dir = tmp_path / 'show'
    runner = build_runner(
        tmp_path, dict(draw=True, interval=0, show_dir=str(show_dir)), 'npy'
    )
    runner.test()
    files = sorted(glob.glob(str(show_dir / '*.png')))
    assert [osp.basename(f) for f in files] == [
        f'img_{i}.png' for i in range(5)
    ]
    panel = cv2.imread(files[0])[..., ::-1]
    # image on top, rows semseg and depth, columns gt | pred
    assert panel.shape[1] > 2 * W and panel.shape[0] > 3 * H
    expected = runner.visualizer.draw_panel(
        np.load(str(tmp_path / 'data' / 'img_0.npy')),
        _predicted_sample(runner, 0),
    )
    np.testing.assert_array_equal(panel, expected)
    assert backend_images(tmp_path) == []


def _predicted_sample(runner, idx):
    item = runner.test_dataloader.dataset[idx]
    return EchoModel()(None, [item['data_samples']], mode='predict')[0]


def test_test_without_show_dir_goes_to_backends_and_inputs_stand_in(tmp_path):
    # images only in memory: the hook draws the batch's input tensors
    runner = build_runner(tmp_path, dict(draw=True, interval=0), 'memory')
    runner.test()
    assert backend_images(tmp_path) == [
        f'test_{i}_{i + 1}.png' for i in range(5)
    ]


def test_unreadable_img_path_warns_and_draws_the_inputs(tmp_path):
    show_dir = tmp_path / 'show'
    runner = build_runner(
        tmp_path,
        dict(draw=True, interval=0, show_dir=str(show_dir)),
        'missing',
        num=2,
    )
    with pytest.warns(UserWarning, match='cannot read .*img_0.png'):
        runner.test()
    panel = cv2.imread(str(show_dir / 'img_0.png'))[..., ::-1]
    item = runner.test_dataloader.dataset[0]
    expected = runner.visualizer.draw_panel(
        item['inputs'], _predicted_sample(runner, 0)
    )
    np.testing.assert_array_equal(panel, expected)


def test_test_without_draw_draws_nothing(tmp_path):
    show_dir = tmp_path / 'show'
    build_runner(tmp_path, dict(interval=0, show_dir=str(show_dir))).test()
    assert not show_dir.exists()
    assert backend_images(tmp_path) == []


def test_mmseg_style_switches_and_test_out_dir_alias():
    hook = MultiTaskVisualizationHook(test_out_dir='x')
    assert hook.show_dir == 'x' and hook.draw is False
    hook.test_out_dir = 'y'
    assert hook.show_dir == 'y'
    with pytest.raises(ValueError, match='same setting'):
        MultiTaskVisualizationHook(show_dir='a', test_out_dir='b')
    with pytest.raises(ValueError, match='interval'):
        MultiTaskVisualizationHook(interval=-1)


def test_test_panels_of_the_synthetic_dataset(tmp_path):
    """The real data path: synthetic scenes through their pipeline, no image files."""
    show_dir = tmp_path / 'show'
    dataset = dict(
        type='SyntheticScenesDataset',
        num_samples=2,
        img_size=(48, 64),
        seed=1,
        split='val',
        tasks=('semseg', 'depth', 'normals', 'edge'),
        test_mode=True,
        pipeline=[
            dict(type='LoadSyntheticScene'),
            dict(type='PackMultiTaskInputs'),
        ],
    )
    runner = Runner(
        model=EchoModel(),
        work_dir=str(tmp_path / 'work'),
        experiment_name=f'vis_hook_{uuid.uuid4().hex}',
        test_dataloader=dict(
            dataset=dataset,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0,
        ),
        test_cfg=dict(),
        test_evaluator=[CountMetric()],
        default_scope='ctal_mm',
        default_hooks=dict(
            visualization=dict(
                type='MultiTaskVisualizationHook',
                draw=True,
                show_dir=str(show_dir),
            )
        ),
        visualizer=dict(type='MultiTaskVisualizer'),
        log_level='WARNING',
    )
    runner.test()
    files = sorted(os.listdir(show_dir))
    assert files == ['0.png', '1.png']
    panel = cv2.imread(str(show_dir / '0.png'))
    # image on top, four task rows, gt | pred
    bar, gap = title_height(48), gap_width(48)
    assert panel.shape[:2] == (5 * (48 + bar) + 6 * gap, 2 * 64 + 3 * gap)
