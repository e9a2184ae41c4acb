"""The compiled edge counts against pyEdgeEval (the reference), and the streaming EdgeMetric."""

import numpy as np
import pytest
import torch
from pyEdgeEval.common.binary_label.evaluate_boundaries import (
    evaluate_boundaries_threshold,
)
from pyEdgeEval.preprocess import binary_thin
from repo_scripts import load_script
from scipy import ndimage as ndi

from ctal_mm.evaluation import EdgeMetric, edge_thresholds
from ctal_mm.evaluation.edge_counts import edge_counts, edge_scores, thin_edges
from ctal_mm.structures import MultiTaskDataSample

bench = load_script('tools/analysis_tools/benchmark_edges.py')

H, W = 60, 80
THRESHOLDS = np.linspace(0.05, 0.95, 19)
MAX_DIST = 0.0075 * 3  # 2.25 pixels at this size: several candidates per pixel


def line_gt():
    gt = np.zeros((H, W), bool)
    gt[20, 5:70] = True
    gt[5:55, 40] = True
    gt[45, 10:30] = True
    return gt


def predictions():
    rng = np.random.default_rng(0)
    gt = line_gt()
    return dict(
        random=rng.random((H, W)),
        thin_lines=np.clip(
            np.roll(gt, 1, 0) * 0.8
            + np.roll(gt, -2, 1) * 0.5
            + rng.uniform(0, 0.1, (H, W)),
            0,
            1,
        ),
        blobs=np.clip(
            ndi.gaussian_filter(rng.random((H, W)), 3) * 3 - 1, 0, 1
        ),
        soft=np.clip(
            ndi.gaussian_filter(gt * 1.0, 1.5)
            * 3
            * rng.uniform(0.6, 1.2, (H, W)),
            0,
            1,
        ),
        empty=np.zeros((H, W)),
        all_on=np.ones((H, W)),
    )


def reference_counts(pred_u8, gt, nms, reruns=3):
    """pyEdgeEval's counts, rerun: its matching draws its outlier edges at random."""
    return np.array(
        [
            evaluate_boundaries_threshold(
                THRESHOLDS,
                pred_u8 / 255.0,
                gt,
                max_dist=MAX_DIST,
                apply_thinning=True,
                apply_nms=nms,
            )
            for _ in range(reruns)
        ]
    )


def test_thinning_equals_the_reference_lookup_tables():
    rng = np.random.default_rng(1)
    for density in (0.1, 0.5, 0.9):
        mask = rng.random((40, 50)) < density
        assert (thin_edges(mask) == binary_thin(mask)).all(), density
    blobs = ndi.gaussian_filter(rng.random((64, 64)), 4) > 0.5
    assert blobs.sum() > 500
    assert (thin_edges(blobs) == binary_thin(blobs)).all()


@pytest.mark.parametrize('nms', [False, True])
@pytest.mark.parametrize('name', sorted(predictions()))
def test_counts_equal_the_reference_up_to_its_randomness(name, nms):
    pred = np.round(predictions()[name] * 255).astype(np.uint8)
    gt = line_gt()
    ours = edge_counts(
        pred, gt, THRESHOLDS, MAX_DIST, nms=nms, matching='maximum'
    )
    bsds = edge_counts(pred, gt, THRESHOLDS, MAX_DIST, nms=nms)
    ref = reference_counts(pred, gt, nms)
    # the benchmark's assignment: never above the maximum, within the reference's reach
    assert (bsds[0] <= ours[0]).all() and (bsds[0] == bsds[2]).all()
    slack = max(2, int(0.02 * gt.sum()))
    assert (bsds[0] >= ref[:, 0].min(0) - slack).all()
    assert ours.shape == (4, len(THRESHOLDS)) and ours.dtype == np.int64
    # the pixel totals are deterministic: equal exactly
    assert (ref[:, 1] == ours[1]).all() and (ref[:, 3] == ours[3]).all()
    # one-to-one: as many matched gt pixels as matched predicted pixels
    assert (ours[0] == ours[2]).all()
    # a maximum matching: never fewer matches than any of the reference's runs, and no
    # more than its best run plus the slack its own reruns show
    assert (ours[0] >= ref[:, 0].max(0)).all()
    slack = max(2, int(0.02 * gt.sum()))
    assert (ours[0] <= ref[:, 0].max(0) + slack).all()
    if name == 'empty':
        assert ours[0].sum() == 0 and ours[3].sum() == 0


def test_counts_without_ground_truth_count_false_positives():
    pred = np.zeros((H, W), np.uint8)
    pred[10, 10:20] = 200
    ours = edge_counts(pred, np.zeros((H, W), bool), THRESHOLDS, MAX_DIST)
    ref = evaluate_boundaries_threshold(
        THRESHOLDS, pred / 255.0, np.zeros((H, W), bool), max_dist=MAX_DIST
    )
    assert (ours == np.array(ref)).all()
    assert ours[3, 0] == 10 and ours[0].sum() == 0


def test_bad_shapes_name_both_maps():
    with pytest.raises(ValueError, match=r'prediction \(4, 5\).*\(4, 6\)'):
        edge_counts(np.zeros((4, 5)), np.zeros((4, 6)), THRESHOLDS)


def test_scores_of_a_perfect_and_an_empty_image():
    gt = line_gt()
    perfect = edge_counts(gt.astype(np.uint8) * 255, gt, THRESHOLDS, MAX_DIST)
    empty = edge_counts(np.zeros((H, W), np.uint8), gt, THRESHOLDS, MAX_DIST)
    assert edge_scores([perfect], THRESHOLDS)['odsF'] == pytest.approx(100)
    # pyEdgeEval's AP: 100 recall points over 101
    assert edge_scores([perfect], THRESHOLDS)['AP'] == pytest.approx(
        10000 / 101
    )
    assert edge_scores([empty], THRESHOLDS)['odsF'] == 0
    both = edge_scores([perfect, empty], THRESHOLDS)
    assert both['oisF'] == pytest.approx(
        200 * 1 * 0.5 / 1.5
    )  # precision 1, recall 1/2


# ----------------------------------------------------------------- the metric
def edge_samples(n=4, ignore_band=True):
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        gt = np.roll(line_gt(), 3 * i, axis=1).astype(np.int64)
        if ignore_band:
            gt[:, :4] = 255  # the ignore band at the border
        pred = np.clip(
            ndi.gaussian_filter(np.roll(line_gt(), 3 * i + 1, axis=1) * 1.0, 1)
            * 2.5
            + rng.uniform(0, 0.3, (H, W)),
            0,
            1,
        )
        s = MultiTaskDataSample()
        s.set_gt('edge', torch.as_tensor(gt[None]))
        s.set_pred('edge', torch.as_tensor(pred[None], dtype=torch.float32))
        out.append(s.to_dict())
    return out


def test_metric_matches_the_reference_on_images_with_ignore_bands():
    data = edge_samples()
    metric = EdgeMetric(nproc=1, num_thresholds=19, max_dist=MAX_DIST)
    metric.process(None, data)
    ours = metric.evaluate(len(data))
    refs = []
    for _ in range(3):
        counts = []
        for s in data:
            gt = s['gt_edge']['data'].numpy()[0]
            prob = s['pred_edge']['data'].numpy()[0].astype(np.float64)
            counts.append(
                np.array(
                    evaluate_boundaries_threshold(
                        edge_thresholds(19),
                        np.round(prob * 255) / 255,
                        gt == 1,  # the ignore band is no edge
                        max_dist=MAX_DIST,
                    )
                )
            )
        refs.append(edge_scores(counts, edge_thresholds(19)))
    for key in ('odsF', 'oisF', 'AP'):
        values = [r[key] for r in refs]
        assert min(values) - 0.5 <= ours[key] <= max(values) + 0.5, key


def test_streaming_keeps_only_counts_and_equals_the_serial_metric():
    data = edge_samples(n=6)
    serial = EdgeMetric(nproc=1, num_thresholds=19, nms=True)
    serial.process(None, data)
    streaming = EdgeMetric(nproc=2, num_thresholds=19, nms=True)
    for i in range(0, len(data), 2):  # batches of two, as a ValLoop feeds them
        streaming.process(None, data[i : i + 2])
        # after process(): nothing image-sized is kept, only counts and sums
        for stats in streaming.results:
            assert set(stats) == {'counts', 'bce', 'n'}
            assert not isinstance(stats['counts'], np.ndarray) or (
                stats['counts'].shape == (4, 19)
            )
        assert len(streaming._pending) <= 2 * streaming.nproc
    streaming.flush()
    assert streaming._executor is None and not streaming._pending
    for stats in streaming.results:
        assert stats['counts'].dtype == np.int32
        assert stats['counts'].size < H * W / 10
    for a, b in zip(serial.results, streaming.results):
        assert (a['counts'] == b['counts']).all()
    assert serial.evaluate(len(data)) == streaming.evaluate(len(data))


def test_metric_rejects_bad_settings():
    with pytest.raises(ValueError, match='nproc'):
        EdgeMetric(nproc=0)
    with pytest.raises(ValueError, match='mp_start_method'):
        EdgeMetric(mp_start_method='thread')
    with pytest.raises(ValueError, match='num_thresholds'):
        EdgeMetric(num_thresholds=0)


# ----------------------------------------------- scores against pyEdgeEval's own
def test_scores_equal_pyedgeeval_calculate_metrics_on_the_same_counts():
    from pyEdgeEval.common.binary_label.calculate_metrics import (
        calculate_metrics,
    )

    rng = np.random.default_rng(5)
    names = dict(
        odsF='ODS_f1',
        ods_threshold='ODS_threshold',
        ods_recall='ODS_recall',
        ods_precision='ODS_precision',
        oisF='OIS_f1',
        ois_recall='OIS_recall',
        ois_precision='OIS_precision',
        AP='AP',
        AUC='AUC',
    )
    for trial in range(8):
        t = int(rng.integers(2, 30))
        thresholds = np.sort(rng.random(t))
        images = []
        for _ in range(int(rng.integers(1, 4))):
            gt = int(rng.integers(0, 50))
            pred = np.sort(rng.integers(0, 80, t))[::-1] * (trial != 3)
            hit = np.minimum(rng.integers(0, 50, t), np.minimum(gt, pred))
            images.append(np.stack([hit, np.full(t, gt), hit, pred]))
        _, _, ref = calculate_metrics(
            lambda s: s['c'],
            thresholds.tolist(),
            [dict(name=str(i), c=c) for i, c in enumerate(images)],
            nproc=1,
        )
        ours = edge_scores(images, thresholds)
        for key, ref_key in names.items():
            scale = 1 if key == 'ods_threshold' else 100
            assert ours[key] == pytest.approx(
                float(ref[ref_key]) * scale, abs=1e-9
            ), (trial, key)


# measured with benchmark_edges.py --sections agreement --family-runs 30 (docs/benchmarks.md):
# pyEdgeEval's own reruns spread by up to 0.3 (ODS/OIS) and 0.9 (noisy AP) on these maps, so
# one run of either side is compared with the other's distribution, not with 3 of its runs
RUNS = 8


@pytest.mark.parametrize('family', bench.FAMILIES)
def test_scores_follow_the_distribution_of_pyedgeeval_reruns(family):
    """Ours over RUNS seeds against pyEdgeEval over RUNS reruns (it draws its outlier
    edges at random): the means agree within the issue's floor (0.05 ODS / OIS, 0.1 AP)
    or 4 standard errors of the difference, whichever is larger. The issue's single-run
    yardstick (within max(0.05, 3 x the range of 3 reruns) of their mean, AP within 0.1)
    is missed by pyEdgeEval's own next rerun too, on every family (see the docs)."""
    ours, ref = bench.family_scores(family, RUNS)
    for key in ('odsF', 'oisF', 'AP'):
        a = np.array([r[key] for r in ours])
        b = np.array([r[key] for r in ref])
        # the standard error from both sides' runs pooled: these scores take few values,
        # and 8 runs of one side are all equal often enough (per-side errors failed 1.3%
        # of resampled draws on 'wide'; pooled, none of 2,000 per family)
        se = np.concatenate([a, b]).std(ddof=1) * np.sqrt(
            1 / len(a) + 1 / len(b)
        )
        tolerance = max(0.1 if key == 'AP' else 0.05, 4 * se)
        assert abs(a.mean() - b.mean()) <= tolerance, (key, a, b)
    # at this size the exact maximum matching passes this comparison too (8 runs: its
    # means 0.01-0.12 above pyEdgeEval's; 'bsds' over 30: -0.035 to +0.040): pyEdgeEval's
    # own randomness is as large as their difference.
    # the exact maximum matching bounds the benchmark's counts at every threshold, so
    # its pooled (ODS) curve is never below any rerun's
    maximum, _ = bench.family_scores(family, 1, matching='maximum')
    assert maximum[0]['odsF'] >= max(r['odsF'] for r in ref) - 1e-9


def test_unknown_matching_names_the_choices():
    with pytest.raises(ValueError, match="'bsds', 'maximum'"):
        edge_counts(
            np.zeros((4, 4)), np.zeros((4, 4)), THRESHOLDS, matching='x'
        )
