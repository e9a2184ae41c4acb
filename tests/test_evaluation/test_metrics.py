"""Every metric against an independent numpy computation, on data samples in the real format."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ctal_mm.evaluation import (
    DepthMetric,
    EdgeMetric,
    MultiTaskMetric,
    NormalsMetric,
    SaliencyMetric,
    SegmentationMetric,
)
from ctal_mm.structures import MultiTaskDataSample
from ctal_mm.utils import register_all_modules

register_all_modules(init_default_scope=False)


def samples(task, gts, preds):
    out = []
    for gt, pred in zip(gts, preds):
        s = MultiTaskDataSample()
        s.set_gt(task, torch.as_tensor(gt))
        s.set_pred(task, torch.as_tensor(pred))
        out.append(s.to_dict())
    return out


def evaluate(metric, data):
    metric.process(None, data)
    return metric.compute_metrics(metric.results)


# ----------------------------------------------------------------- segmentation
def seg_data(rng, n=4, c=6, size=(9, 11)):
    gts = rng.integers(
        0, c - 1, (n, 1, *size)
    )  # class c-1 never in the ground truth
    gts[:, :, :2] = 255  # ignored rows
    preds = rng.integers(
        0, c - 2, (n, 1, *size)
    )  # classes c-2, c-1 never predicted
    return gts, preds


def numpy_iou(gts, preds, c):
    valid = gts != 255
    ious = []
    for k in range(c):
        tp = ((gts == k) & (preds == k) & valid).sum()
        union = (((gts == k) | (preds == k)) & valid).sum()
        ious.append(tp / union if union else np.nan)
    return np.array(ious), ((gts == preds) & valid).sum() / valid.sum()


@pytest.mark.parametrize('absent', ['exclude', 'zero'])
def test_segmentation_matches_numpy(absent):
    rng = np.random.default_rng(0)
    gts, preds = seg_data(rng)
    res = evaluate(
        SegmentationMetric(
            task='semseg', num_classes=6, absent_classes=absent
        ),
        samples('semseg', gts, preds),
    )
    iou, acc = numpy_iou(gts, preds, 6)
    expected = (
        np.nanmean(iou) if absent == 'exclude' else np.nan_to_num(iou).mean()
    )
    assert res['mIoU'] == pytest.approx(expected * 100)
    assert res['pixel_acc'] == pytest.approx(acc * 100)
    # class 5 is absent from gt and prediction: the two conventions differ by exactly that
    assert np.isnan(iou[5])


def test_segmentation_perfect_and_all_wrong():
    rng = np.random.default_rng(1)
    gts, _ = seg_data(rng)
    perfect = evaluate(
        SegmentationMetric(num_classes=6), samples('semseg', gts, gts)
    )
    assert perfect['mIoU'] == pytest.approx(100) and perfect[
        'pixel_acc'
    ] == pytest.approx(100)
    wrong = evaluate(
        SegmentationMetric(num_classes=6),
        samples('semseg', gts, (gts + 1) % 5),
    )
    assert wrong['mIoU'] == 0 and wrong['pixel_acc'] == 0


def test_human_parts_only_on_images_with_people():
    gts = np.zeros((2, 1, 4, 4), np.int64)
    gts[0, 0, :2] = 3  # image 0 has a person; image 1 is background only
    preds = np.zeros_like(gts)
    preds[1] = (
        2  # wrong everywhere on the image without people: must not count
    )
    res = evaluate(
        SegmentationMetric(
            task='human_parts', num_classes=7, only_images_with_labels=True
        ),
        samples('human_parts', gts, preds),
    )
    _, acc = numpy_iou(gts[:1], preds[:1], 7)
    assert res['pixel_acc'] == pytest.approx(acc * 100)


def test_missing_prediction_names_the_field():
    s = MultiTaskDataSample()
    s.set_gt('semseg', torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(KeyError, match="'pred_semseg'"):
        SegmentationMetric().process(None, [s.to_dict()])


# ----------------------------------------------------------------- depth
def test_depth_matches_numpy_over_valid_pixels():
    rng = np.random.default_rng(2)
    gts = rng.uniform(0.5, 5, (3, 1, 8, 8)).astype(np.float32)
    gts[:, :, :3] = 0  # invalid
    preds = (gts + rng.normal(0, 0.3, gts.shape)).astype(np.float32)
    preds[0, 0, 5, 5] = -1  # non-positive predictions: clamped in every term
    preds[1, 0, 6, 6] = 0
    res = evaluate(DepthMetric(), samples('depth', gts, preds))
    valid = gts > 0
    g, p = gts[valid].astype(np.float64), preds[valid].astype(np.float64)
    pc = np.maximum(p, 1e-9)
    assert res['abs_err'] == pytest.approx(np.abs(pc - g).mean())
    assert res['abs_err'] != pytest.approx(np.abs(p - g).mean())
    assert res['rel_err'] == pytest.approx((np.abs(pc - g) / g).mean())
    assert res['rmse'] == pytest.approx(np.sqrt(((pc - g) ** 2).mean()))
    assert res['log_rmse'] == pytest.approx(
        np.sqrt(((np.log(pc) - np.log(g)) ** 2).mean())
    )
    ratio = np.maximum(pc / g, g / pc)
    assert res['delta1'] == pytest.approx((ratio < 1.25).mean() * 100)
    perfect = evaluate(DepthMetric(), samples('depth', gts, gts))
    assert perfect['abs_err'] == 0 and perfect['delta1'] == 100


# ----------------------------------------------------------------- normals
def unit(rng, shape):
    return F.normalize(torch.as_tensor(rng.normal(size=shape)), dim=1).numpy()


@pytest.mark.parametrize('angle', ['atan2', 'acos'])
def test_normals_match_numpy(angle):
    rng = np.random.default_rng(3)
    gts = unit(rng, (2, 3, 6, 7))
    gts[:, :, :2] = 0  # invalid
    preds = (
        unit(rng, (2, 3, 6, 7)) * 3
    )  # not unit length: the metric normalises
    res = evaluate(NormalsMetric(angle=angle), samples('normals', gts, preds))
    g = gts.transpose(0, 2, 3, 1).reshape(-1, 3)
    p = preds.transpose(0, 2, 3, 1).reshape(-1, 3)
    valid = np.abs(g).sum(1) > 0
    g, p = g[valid], p[valid] / np.linalg.norm(p[valid], axis=1, keepdims=True)
    ang = np.degrees(np.arccos(np.clip((g * p).sum(1), -1, 1)))
    assert res['mean'] == pytest.approx(ang.mean(), abs=1e-4)
    assert res['rmse'] == pytest.approx(np.sqrt((ang**2).mean()), abs=1e-4)
    assert res['median'] == pytest.approx(np.median(ang), abs=0.02)
    assert res['within_30'] == pytest.approx((ang < 30).mean() * 100)
    perfect = evaluate(
        NormalsMetric(angle=angle), samples('normals', gts, gts)
    )
    assert (
        perfect['mean'] == pytest.approx(0, abs=1e-3)
        and perfect['within_11_25'] == 100
    )


# ----------------------------------------------------------------- saliency
def test_saliency_max_f_and_iou_match_numpy():
    rng = np.random.default_rng(4)
    gts = rng.integers(0, 2, (3, 1, 8, 8))
    gts[:, :, 0] = 255
    probs = np.clip(gts * 0.6 + rng.uniform(0, 0.5, gts.shape), 0, 1).astype(
        np.float32
    )
    res = evaluate(SaliencyMetric(), samples('saliency', gts, probs))
    valid = gts != 255
    g, p = gts[valid] == 1, probs[valid]
    best = 0
    for t in np.arange(1, 20) * 0.05:
        tp = ((p > t) & g).sum()
        prec, rec = tp / max((p > t).sum(), 1e-12), tp / g.sum()
        best = max(best, 1.3 * prec * rec / max(0.3 * prec + rec, 1e-12))
    assert res['maxF'] == pytest.approx(best * 100)
    h = p > 0.5
    miou = (
        ((h & g).sum() / (h | g).sum()) + ((~h & ~g).sum() / (~h | ~g).sum())
    ) / 2
    assert res['mIoU'] == pytest.approx(miou * 100)
    perfect = evaluate(
        SaliencyMetric(),
        samples('saliency', gts, (gts == 1).astype(np.float32)),
    )
    assert perfect['maxF'] == pytest.approx(100)


def test_saliency_reference_double_sigmoid_is_a_named_switch():
    gts = np.array([[[[1, 0]]]])
    probs = np.array([[[[0.3, 0.0]]]], np.float32)
    fixed = evaluate(SaliencyMetric(), samples('saliency', gts, probs))
    compat = evaluate(
        SaliencyMetric(reference_double_sigmoid=True),
        samples('saliency', gts, probs),
    )
    # sigmoid(0.3) = 0.574 > 0.5 only with the bug, which makes this prediction perfect
    assert fixed['mIoU'] == pytest.approx(25) and compat[
        'mIoU'
    ] == pytest.approx(100)


# ----------------------------------------------------------------- edges
def edge_gt(size=48):
    gt = np.zeros((1, 1, size, size), np.int64)
    gt[0, 0, 10, 5:40] = 1
    gt[0, 0, 5:40, 30] = 1
    return gt


def test_edge_perfect_shifted_and_empty():
    gt = edge_gt()
    perfect = evaluate(
        EdgeMetric(nproc=1, num_thresholds=9), samples('edge', gt, gt * 1.0)
    )
    assert perfect['odsF'] == pytest.approx(100) and perfect[
        'oisF'
    ] == pytest.approx(100)
    shifted = np.roll(gt, 1, axis=-1) * 0.9
    near = evaluate(
        EdgeMetric(nproc=1, num_thresholds=9, max_dist=0.0075 * 3),
        samples('edge', gt, shifted),
    )
    assert near['odsF'] >= 95
    empty = evaluate(
        EdgeMetric(nproc=1, num_thresholds=9), samples('edge', gt, gt * 0.0)
    )
    assert empty['odsF'] == 0


def test_edge_parallel_equals_serial_and_bce_proxy():
    rng = np.random.default_rng(5)
    gt = np.concatenate([edge_gt(), np.roll(edge_gt(), 7, axis=-2)])
    pred = np.clip(gt * 0.7 + rng.uniform(0, 0.4, gt.shape), 0, 1)
    serial = evaluate(
        EdgeMetric(nproc=1, num_thresholds=9), samples('edge', gt, pred)
    )
    parallel = evaluate(
        EdgeMetric(nproc=2, num_thresholds=9), samples('edge', gt, pred)
    )
    # the benchmark's matching is slightly randomised: equal up to that
    assert serial == pytest.approx(parallel, abs=3.0)
    with_nms = evaluate(
        EdgeMetric(nproc=1, num_thresholds=9, nms=True),
        samples('edge', gt, pred),
    )
    assert 50 < with_nms['odsF'] <= 100
    y = gt.reshape(-1) == 1
    p = np.clip(pred.reshape(-1), 1e-7, 1 - 1e-7)
    bce = -(0.95 * y * np.log(p) + 0.05 * (~y) * np.log(1 - p)).mean()
    assert serial['bce_loss'] == pytest.approx(bce, rel=1e-6)


# ----------------------------------------------------------------- multitask + delta_m
def test_multitask_metric_reports_every_task_and_delta_m():
    rng = np.random.default_rng(6)
    seg_gt, seg_pred = seg_data(rng, n=2)
    depth_gt = rng.uniform(1, 2, (2, 1, 9, 11)).astype(np.float32)
    depth_pred = depth_gt + 0.1
    data = []
    for i in range(2):
        s = MultiTaskDataSample()
        s.set_gt('semseg', torch.as_tensor(seg_gt[i]))
        s.set_pred('semseg', torch.as_tensor(seg_pred[i]))
        s.set_gt('depth', torch.as_tensor(depth_gt[i]))
        s.set_pred('depth', torch.as_tensor(depth_pred[i]))
        data.append(s.to_dict())
    single = {
        'semseg': evaluate(SegmentationMetric(num_classes=6), data),
        'depth': evaluate(DepthMetric(), data),
    }
    stl = dict(semseg=dict(mIoU=20.0), depth=dict(abs_err=0.2))
    metric = MultiTaskMetric(
        task_metrics=dict(
            semseg=dict(type='SegmentationMetric', num_classes=6),
            depth=dict(type='DepthMetric'),
        ),
        stl_baselines=stl,
    )
    res = evaluate(metric, data)
    assert res['semseg/mIoU'] == pytest.approx(single['semseg']['mIoU'])
    assert res['depth/abs_err'] == pytest.approx(0.1, rel=1e-5)
    expected = (
        (single['semseg']['mIoU'] - 20) / 20 * 100 - (0.1 - 0.2) / 0.2 * 100
    ) / 2
    assert res['delta_m'] == pytest.approx(expected, rel=1e-5)


def test_delta_m_refuses_an_unknown_baseline_metric():
    metric = MultiTaskMetric(
        task_metrics=dict(depth=dict(type='DepthMetric')),
        stl_baselines=dict(depth=dict(rmsee=1.0)),
    )
    with pytest.raises(KeyError, match='rmsee'):
        metric.delta_m({'depth/rmse': 1.0})
    with pytest.raises(KeyError, match='normals'):
        MultiTaskMetric(
            task_metrics=dict(depth=dict(type='DepthMetric')),
            stl_baselines=dict(normals=dict(mean=1.0)),
        )
