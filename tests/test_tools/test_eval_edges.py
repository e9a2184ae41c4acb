"""tools/analysis_tools/eval_edges.py scores saved PNGs as the online EdgeMetric does."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from repo_scripts import load_script

from ctal_mm.evaluation import EdgeMetric
from ctal_mm.structures import MultiTaskDataSample

eval_edges = load_script('tools/analysis_tools/eval_edges.py')


def write_split(tmp_path, n=3, size=(40, 52)):
    rng = np.random.default_rng(0)
    pred_dir, gt_dir = tmp_path / 'pred', tmp_path / 'gt'
    pred_dir.mkdir()
    gt_dir.mkdir()
    samples = []
    for i in range(n):
        gt = np.zeros(size, np.uint8)
        gt[8 + i, 4:48] = 1
        gt[5:35, 20 + 2 * i] = 1
        gt[:, :3] = 255  # ignored band
        prob = np.clip(
            np.roll(gt == 1, 1, axis=0) * 0.7 + rng.uniform(0, 0.6, size),
            0,
            1,
        )
        strength = np.round(prob * 255).astype(np.uint8)
        Image.fromarray(strength).save(pred_dir / f'img{i}.png')
        Image.fromarray(gt).save(gt_dir / f'img{i}.png')
        s = MultiTaskDataSample()
        s.set_gt('edge', torch.as_tensor(gt[None].astype(np.int64)))
        s.set_pred('edge', torch.as_tensor(strength[None] / 255.0))
        samples.append(s.to_dict())
    return pred_dir, gt_dir, samples


def test_offline_scores_equal_the_online_metric(tmp_path, capsys):
    pred_dir, gt_dir, samples = write_split(tmp_path)
    metric = EdgeMetric(nproc=1, num_thresholds=19, nms=True, max_dist=0.02)
    metric.process(None, samples)
    online = metric.evaluate(len(samples))
    out = tmp_path / 'scores.json'
    argv = [str(pred_dir), str(gt_dir), '--thresholds', '19', '--nms']
    argv += ['--max-dist', '0.02', '--ignore-value', '255', '--no-progress']
    scores = eval_edges.main(argv + ['--nproc', '1', '--out', str(out)])
    for key in ('odsF', 'oisF', 'AP'):
        assert scores[key] == pytest.approx(online[key], abs=1e-9), key
    assert scores['num_images'] == 3 and 0 < scores['odsF'] < 100
    assert 'ODS-F' in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved['scores']['odsF'] == pytest.approx(scores['odsF'])
    assert len(saved['curve']['recall']) == 19
    parallel = eval_edges.main(argv + ['--nproc', '2'])
    assert parallel == scores


def test_missing_predictions_are_named(tmp_path):
    pred_dir, gt_dir, _ = write_split(tmp_path)
    (pred_dir / 'img1.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'1 of the 3.*img1'):
        eval_edges.main([str(pred_dir), str(gt_dir), '--no-progress'])


def test_bad_prediction_files_are_named(tmp_path):
    pred_dir, gt_dir, _ = write_split(tmp_path, n=1)
    np.save(pred_dir / 'img0.npy', np.full((40, 52), 3.0))
    (pred_dir / 'img0.png').unlink()
    with pytest.raises(ValueError, match=r'img0.npy.*outside \[0, 1\]'):
        eval_edges.main([str(pred_dir), str(gt_dir), '--no-progress'])
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(pred_dir / 'img0.png')
    (pred_dir / 'img0.npy').unlink()
    with pytest.raises(ValueError, match=r'img0.png is \(40, 50\)'):
        eval_edges.main([str(pred_dir), str(gt_dir), '--no-progress'])
