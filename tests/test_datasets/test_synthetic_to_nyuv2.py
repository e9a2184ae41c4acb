"""tools/dataset_converters/synthetic_to_nyuv2.py: a round trip through the real NYUv2 loader."""

import os.path as osp
import runpy
import sys

import numpy as np
import pytest
from dataset_layouts import REPO, config_path
from repo_scripts import load_script

from ctal_mm.datasets import render_scene
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import DATASETS

TOOL = osp.join(REPO, 'tools', 'dataset_converters', 'synthetic_to_nyuv2.py')


def load_tool():
    return load_script(TOOL)


def test_round_trip_through_the_nyuv2_config(tmp_path):
    out = str(tmp_path / 'nyuv2')
    load_tool().main(
        [out, '--num-train', '2', '--num-val', '3', '--size', '24', '32',
         '--ignore-border', '2', '--seed', '5']
    )  # fmt: skip
    cfg = load_config(config_path('nyuv2'))
    cfg.val_dataloader.dataset.data_root = out
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(val) == 3
    for index in range(3):
        scene = render_scene(
            6, index, 24, 32, num_classes=13
        )  # val seed = seed + 1
        item = val[index]
        sample = item['data_samples']
        np.testing.assert_allclose(
            item['inputs'].numpy().transpose(1, 2, 0), scene['img'], atol=1e-3
        )
        inner = (slice(2, -2), slice(2, -2))
        semseg = sample.gt('semseg')[0].numpy()
        np.testing.assert_array_equal(semseg[inner], scene['semseg'][inner])
        assert (semseg[:2] == 255).all() and (semseg[:, -2:] == 255).all()
        depth = sample.gt('depth')[0].numpy()
        np.testing.assert_allclose(depth[inner], scene['depth'][inner])
        assert (depth[:, :2] == 0).all()
        normals = sample.gt('normals').numpy().transpose(1, 2, 0)
        np.testing.assert_allclose(
            normals[inner], scene['normals'][inner], atol=1e-6
        )
        assert (normals[-2:] == 0).all()
    cfg.train_dataloader.dataset.data_root = out
    assert len(DATASETS.build(cfg.train_dataloader.dataset)) == 2


def run_script(argv, monkeypatch):
    """Run the tool as ``python TOOL argv`` in this process (a subprocess pays ~5 s of imports)."""
    monkeypatch.setattr(sys, 'argv', [TOOL, *argv])
    runpy.run_path(TOOL, run_name='__main__')


def test_command_line(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / 'cli')
    run_script(
        [out, '--num-train', '1', '--num-val', '1', '--size', '8', '12'],
        monkeypatch,
    )
    assert 'Wrote 1 train and 1 val scenes' in capsys.readouterr().out
    image = np.load(osp.join(out, 'train', 'image', '0.npy'))
    assert image.shape == (8, 12, 3) and image.dtype == np.float32
    assert 0 <= image.min() and image.max() <= 1
    label = np.load(osp.join(out, 'val', 'label', '0.npy'))
    assert label.shape == (8, 12) and label.dtype == np.float32
    assert np.load(osp.join(out, 'val', 'depth', '0.npy')).shape == (8, 12, 1)
    with pytest.raises(SystemExit):
        run_script([out, '--num-train', '0'], monkeypatch)
    assert '--num-train and --num-val must be >= 1' in capsys.readouterr().err
