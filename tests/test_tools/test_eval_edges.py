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


def test_compare_pyedgeeval_prints_both_and_their_differences(
    tmp_path, capsys
):
    pred_dir, gt_dir, _ = write_split(tmp_path)
    out = tmp_path / 'scores.json'
    argv = [str(pred_dir), str(gt_dir), '--thresholds', '9', '--nms']
    argv += ['--ignore-value', '255', '--no-progress', '--nproc', '1']
    scores = eval_edges.main(
        argv + ['--compare-pyedgeeval', '--out', str(out)]
    )
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    ref = saved['pyedgeeval_scores']
    # a row per number: ours, pyEdgeEval's, and the difference, as printed
    for key in ('odsF', 'oisF', 'AP', 'AUC'):
        row = next(
            line for line in printed.splitlines() if line.startswith(key)
        )
        ours, theirs, diff = (float(v) for v in row.split()[1:])
        assert ours == pytest.approx(scores[key], abs=0.005)
        assert theirs == pytest.approx(ref[key], abs=0.005)
        assert diff == pytest.approx(scores[key] - ref[key], abs=0.011)
    # pyEdgeEval's own counts: the pixel totals are deterministic, the matches within
    # its randomness of ours (a few pixels of ~130 matched per image)
    assert (
        saved['pyedgeeval_curve']['thresholds'] == saved['curve']['thresholds']
    )
    assert abs(ref['odsF'] - scores['odsF']) < 2
    assert ref['num_images'] == 3 and 0 < ref['odsF'] < 100


def test_plot_draws_ours_beside_other_result_files(tmp_path, capsys):
    pred_dir, gt_dir, _ = write_split(tmp_path)
    argv = [str(pred_dir), str(gt_dir), '--thresholds', '9', '--no-progress']
    argv += ['--nproc', '1']
    other = tmp_path / 'other_method.json'
    eval_edges.main(argv + ['--max-dist', '0.02', '--out', str(other)])
    picture = tmp_path / 'pr.png'
    eval_edges.main(argv + ['--plot', str(picture), '--plot-with', str(other)])
    assert f'precision-recall curve: {picture}' in capsys.readouterr().out
    with Image.open(picture) as image:
        drawn = np.asarray(image.convert('RGB'))
    assert drawn.shape[0] > 300 and drawn.shape[1] > 300
    # two coloured curves (matplotlib's first two colours: blue, orange) on grey axes
    blue = (np.abs(drawn.astype(int) - (31, 119, 180)).sum(-1) < 40).sum()
    orange = (np.abs(drawn.astype(int) - (255, 127, 14)).sum(-1) < 40).sum()
    assert blue > 100 and orange > 100


def test_plot_with_rejects_files_without_a_curve(tmp_path):
    pred_dir, gt_dir, _ = write_split(tmp_path, n=1)
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'odsF': 70}))
    argv = [str(pred_dir), str(gt_dir), '--no-progress', '--nproc', '1']
    argv += ['--plot', str(tmp_path / 'pr.png'), '--plot-with', str(bad)]
    with pytest.raises(ValueError, match=r'bad.json: no "curve".*--out'):
        eval_edges.main(argv)
    with pytest.raises(SystemExit, match='--plot-with'):
        eval_edges.main(argv[:5] + ['--plot-with', str(bad)])
