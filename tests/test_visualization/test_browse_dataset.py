"""tools/analysis_tools/browse_dataset.py end to end, in a subprocess."""

import os
import os.path as osp
import subprocess
import sys
import textwrap

import cv2
import pytest
from repo_scripts import REPO, load_script

from ctal_mm.visualization.panel import gap_width, title_height

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'browse_dataset.py')


def run_tool(*args, pythonpath=()):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO, *pythonpath, env.get('PYTHONPATH', '')]
    )
    env['MPLBACKEND'] = 'Agg'
    return subprocess.run(
        [sys.executable, TOOL, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def grid_size(tile_hw, n_rows, n_cols):
    h, w = tile_hw
    bar, gap = title_height(h), gap_width(h)
    return (
        n_rows * (h + bar) + (n_rows + 1) * gap,
        n_cols * w + (n_cols + 1) * gap,
    )


PARTIAL_DATASET = '''
import numpy as np
import torch
from torch.utils.data import Dataset

from ctal_mm.registry import DATASETS
from ctal_mm.structures import MultiTaskDataSample


@DATASETS.register_module()
class PartialLabelsDataset(Dataset):
    """Odd samples have no depth label: the panels must still line up."""

    metainfo = dict(
        task_kinds=dict(semseg="segmentation", depth="depth"),
        classes=["a", "b", "c"],
        palette=[[200, 0, 0], [0, 200, 0], [0, 0, 200]],
    )

    def __init__(self, num=3):
        self.num = num

    def __len__(self):
        return self.num

    def __getitem__(self, idx):
        rng = np.random.default_rng(idx)
        sample = MultiTaskDataSample(
            metainfo=dict(img_path=f"x/img{idx}.jpg", sample_idx=idx)
        )
        sample.set_gt(
            "semseg", torch.from_numpy(rng.integers(0, 3, (1, 24, 32)))
        )
        if idx % 2 == 0:
            sample.set_gt("depth", torch.rand(1, 24, 32) + 1)
        img = torch.from_numpy(rng.random((3, 24, 32)) * 255).float()
        return dict(inputs=img, data_samples=sample)
'''


def test_samples_lacking_a_task_still_get_every_tile(tmp_path):
    (tmp_path / 'partial_labels.py').write_text(PARTIAL_DATASET)
    config = tmp_path / 'partial.py'
    config.write_text(
        textwrap.dedent(
            """
            custom_imports = dict(imports=['partial_labels'])
            default_scope = 'ctal_mm'
            train_dataloader = dict(
                dataset=dict(type='PartialLabelsDataset', num=3))
            visualizer = dict(type='MultiTaskVisualizer')
            """
        )
    )
    out = tmp_path / 'out'
    result = run_tool(
        str(config),
        '--output-dir',
        str(out),
        '--not-show',
        '--num',
        '2',
        pythonpath=[str(tmp_path)],
    )
    assert result.returncode == 0, result.stderr
    names = sorted(os.listdir(out))
    assert names == ['00000_img0.png', '00001_img1.png']
    for name in names:
        panel = cv2.imread(str(out / name))
        # image, semseg, depth (a placeholder for sample 1) in one row
        assert panel.shape[:2] == grid_size((24, 32), 1, 3)


SYNTHETIC = osp.join(REPO, 'configs', '_base_', 'datasets', 'synthetic.py')


def test_synthetic_config_all_six_tasks(tmp_path):
    out = tmp_path / 'out'
    result = run_tool(
        SYNTHETIC,
        '--output-dir',
        str(out),
        '--not-show',
        '--num',
        '3',
        '--cfg-options',
        'train_dataloader.dataset.num_samples=4',
        'train_dataloader.dataset.img_size=(48,64)',
        'train_dataloader.dataset.tasks=[semseg,depth,normals,edge,'
        'saliency,human_parts]',
    )
    assert result.returncode == 0, result.stderr
    names = sorted(os.listdir(out))
    assert names == ['00000.png', '00001.png', '00002.png']
    for name in names:
        panel = cv2.imread(str(out / name))
        # the image and six tasks in a grid of 4 columns
        assert panel.shape[:2] == grid_size((48, 64), 2, 4)
        # the tiles hold pictures, not only the dark background
        assert panel.std() > 20


def load_tool():
    return load_script(TOOL)


def test_not_show_without_output_dir_is_refused(capsys):
    with pytest.raises(SystemExit):
        load_tool().parse_args(['any.py', '--not-show'])
    assert '--output-dir' in capsys.readouterr().err
