"""Per-task metrics, accumulated over the whole split as the CTAL reference does.

Each metric reads ``gt_<task>`` and ``pred_<task>`` (ctal_mm's conventions, see
ctal_mm/structures/task_kinds.py) from the data samples, keeps small per-image statistics in
``process`` (a confusion matrix, sums, histograms), and reduces them split-wide in
``compute_metrics``; mmengine gathers ``self.results`` from every rank first, so the numbers do
not depend on how the split was divided. ``LOWER_IS_BETTER`` declares each metric's direction
once; the multitask metric uses it for delta_m. ``ACCEPTED_KINDS`` names the task kinds a metric
scores (the config checks read it).
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable

from ctal_mm.registry import METRICS
from ctal_mm.structures import IGNORE_INDEX, class_meta_key, class_names
from ctal_mm.utils.misc import to_numpy


def _task_fields(sample: dict) -> list:
    return sorted(k for k in sample if k.startswith(('gt_', 'pred_')))


class BaseTaskMetric(BaseMetric):
    """Reads one task's maps from the samples; subclasses give ``image_statistics`` and
    ``reduce``.

    Args:
        task: the task name (``gt_<task>`` / ``pred_<task>``).
    """

    LOWER_IS_BETTER: frozenset = frozenset()
    # the task kinds the metric scores; None: not declared (the config checks skip it)
    ACCEPTED_KINDS: Optional[Tuple[str, ...]] = None
    # '' (not None): no prefix on the metric names, as MultiTaskMetric prefixes the task
    # itself, and no mmengine warning that the prefix is not set
    default_prefix = ''

    def __init__(
        self,
        task: str,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.task = task

    def maps(self, sample: dict):
        gt_key, pred_key = f'gt_{self.task}', f'pred_{self.task}'
        for key in (gt_key, pred_key):
            if key not in sample:
                raise KeyError(
                    f'{type(self).__name__}(task={self.task!r}) needs {key!r} in every data '
                    f'sample; this one has {_task_fields(sample)}. '
                    'Check that the dataset loads the task and the model predicts it.'
                )
        gt, pred = (
            to_numpy(sample[gt_key]['data']),
            to_numpy(sample[pred_key]['data']),
        )
        if gt.shape[-2:] != pred.shape[-2:]:
            raise ValueError(
                f'{pred_key} is {pred.shape[-2:]} but {gt_key} is {gt.shape[-2:]}; '
                'predictions must be at the ground truth size (the original image).'
            )
        if (
            np.issubdtype(pred.dtype, np.floating)
            and not np.isfinite(pred).all()
        ):
            bad = int(np.size(pred) - np.isfinite(pred).sum())
            name = (
                sample.get('img_path') or f'sample {sample.get("sample_idx")}'
            )
            raise ValueError(
                f'{type(self).__name__}(task={self.task!r}): {pred_key} of {name} has '
                f'{bad} non-finite value(s) (NaN or inf) out of {np.size(pred)}. The '
                'model predicts NaN: its weights diverged (see the non-finite loss / '
                'gradient messages of training) or the checkpoint holds non-finite '
                'weights. Evaluate an earlier checkpoint, or retrain with a lower '
                'learning rate or gradient clipping.'
            )
        return gt, pred

    def image_statistics(self, gt: np.ndarray, pred: np.ndarray):
        raise NotImplementedError

    def reduce(self, stats: List) -> Dict[str, float]:
        raise NotImplementedError

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            stats = self.image_statistics(*self.maps(sample))
            if stats is not None:
                self.results.append(stats)

    def flush(self) -> None:
        """Finish statistics still being computed (in worker processes, for the metrics that
        use them); called before the results are gathered."""

    def evaluate(self, size: int) -> dict:
        self.flush()
        return super().evaluate(size)

    def compute_metrics(self, results: List) -> Dict[str, float]:
        return self.reduce(results)


@METRICS.register_module()
class SegmentationMetric(BaseTaskMetric):
    """Confusion matrix over the split: mIoU, pixel accuracy, per-class IoU (logged).

    Args:
        num_classes: number of classes (default: the count of the dataset's class names for
            the task, ``classes`` / ``<task>_classes`` of ``dataset_meta``, which the
            Runner's evaluator sets).
        absent_classes: ``'exclude'``: mIoU is the mean over classes present in prediction or
            ground truth (nan-mean, the CNN reference); ``'zero'``: IoU = TP / max(union, 1e-8) for
            every class, so an absent class counts 0 (the transformer reference).
        only_images_with_labels: count only images whose ground truth has a label other than
            ``background_index`` and ignore (the reference scores human parts only on images with
            people).
        background_index: the background class for ``only_images_with_labels``.
    """

    ACCEPTED_KINDS = ('segmentation',)
    LOWER_IS_BETTER = frozenset()

    def __init__(
        self,
        task: str = 'semseg',
        num_classes: Optional[int] = None,
        absent_classes: str = 'exclude',
        only_images_with_labels: bool = False,
        background_index: int = 0,
        ignore_index: int = IGNORE_INDEX,
        **kwargs,
    ):
        super().__init__(task, **kwargs)
        if absent_classes not in ('exclude', 'zero'):
            raise ValueError(
                f"absent_classes must be 'exclude' or 'zero', got {absent_classes!r}"
            )
        self._num_classes = num_classes
        self.absent_classes = absent_classes
        self.only_images_with_labels = only_images_with_labels
        self.background_index = background_index
        self.ignore_index = ignore_index

    @property
    def num_classes(self) -> int:
        if self._num_classes is not None:
            return self._num_classes
        classes = class_names(self.dataset_meta, self.task)
        if classes is None:
            key = class_meta_key(self.dataset_meta, self.task, 'classes')
            raise ValueError(
                f'SegmentationMetric(task={self.task!r}) has no num_classes and its '
                f"dataset_meta has no '{key}' to count. Set "
                'num_classes, or evaluate on a dataset whose metainfo names the classes.'
            )
        return len(classes)

    def image_statistics(self, gt, pred):
        gt, pred = (
            gt.reshape(-1).astype(np.int64),
            pred.reshape(-1).astype(np.int64),
        )
        valid = gt != self.ignore_index
        if (
            self.only_images_with_labels
            and not (valid & (gt != self.background_index)).any()
        ):
            return None
        if valid.any() and gt[valid].max() >= self.num_classes:
            raise ValueError(
                f'gt_{self.task} has class {gt[valid].max()} but the metric has '
                f'num_classes={self.num_classes}.'
            )
        index = gt[valid] * self.num_classes + np.clip(
            pred[valid], 0, self.num_classes - 1
        )
        return np.bincount(index, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )

    def reduce(self, stats):
        conf = (
            np.sum(stats, axis=0)
            if stats
            else np.zeros((self.num_classes,) * 2, np.int64)
        )
        tp = np.diag(conf).astype(np.float64)
        union = conf.sum(0) + conf.sum(1) - tp
        if self.absent_classes == 'exclude':
            with np.errstate(invalid='ignore', divide='ignore'):
                iou = tp / union
            miou = (
                float(np.nanmean(iou))
                if np.isfinite(iou).any()
                else float('nan')
            )
        else:
            iou = tp / np.maximum(union, 1e-8)
            miou = float(iou.mean())
        acc = float(tp.sum() / max(conf.sum(), 1))
        self._log_table(iou)
        return dict(mIoU=miou * 100, pixel_acc=acc * 100)

    def _log_table(self, iou):
        names = class_names(self.dataset_meta, self.task)
        if names is None or len(names) != len(iou):
            names = [str(i) for i in range(len(iou))]
        table = PrettyTable(['class', 'IoU'])
        for name, value in zip(names, iou):
            table.add_row(
                [
                    name,
                    f'{value * 100:.2f}' if np.isfinite(value) else 'absent',
                ]
            )
        print_log(
            f'{self.task} per-class IoU:\n{table.get_string()}',
            logger=MMLogger.get_current_instance(),
        )


@METRICS.register_module()
class DepthMetric(BaseTaskMetric):
    """Depth errors over valid pixels (gt > 0) of the whole split, pixel-weighted.

    abs_err = mean |d - d*|, rel_err = mean |d - d*| / d*, rmse, log_rmse, delta_k = % of
    pixels with max(d/d*, d*/d) < 1.25^k. Predictions <= 0 are clamped to 1e-9 before every
    term, as the reference's depth meter does (a depth is positive; unclamped, a network that
    predicts negative depths would be scored on values no depth can take).
    """

    ACCEPTED_KINDS = ('depth',)
    LOWER_IS_BETTER = frozenset({'abs_err', 'rel_err', 'rmse', 'log_rmse'})

    def __init__(self, task: str = 'depth', **kwargs):
        super().__init__(task, **kwargs)

    def image_statistics(self, gt, pred):
        gt, pred = (
            gt.reshape(-1).astype(np.float64),
            pred.reshape(-1).astype(np.float64),
        )
        valid = gt > 0
        g, p = gt[valid], np.maximum(pred[valid], 1e-9)
        diff = p - g
        ratio = np.maximum(p / g, g / p)
        return np.array(
            [
                valid.sum(),
                np.abs(diff).sum(),
                (np.abs(diff) / g).sum(),
                (diff**2).sum(),
                ((np.log(p) - np.log(g)) ** 2).sum(),
                (ratio < 1.25).sum(),
                (ratio < 1.25**2).sum(),
                (ratio < 1.25**3).sum(),
            ]
        )

    def reduce(self, stats):
        n, s_abs, s_rel, s_sq, s_log, d1, d2, d3 = (
            np.sum(stats, axis=0) if stats else [0] * 8
        )
        n = max(n, 1)
        return dict(
            abs_err=s_abs / n,
            rel_err=s_rel / n,
            rmse=float(np.sqrt(s_sq / n)),
            log_rmse=float(np.sqrt(s_log / n)),
            delta1=d1 / n * 100,
            delta2=d2 / n * 100,
            delta3=d3 / n * 100,
        )


@METRICS.register_module()
class NormalsMetric(BaseTaskMetric):
    """Angle between predicted and true normals over valid pixels (gt not all zero), both
    taken to unit length.

    mean, median and rmse angle (degrees), % within 11.25 / 22.5 / 30 degrees. The median comes
    from a histogram of 0.01-degree bins over the split (exact to 0.005 degrees, memory-bounded).

    Args:
        angle: ``'atan2'``: 2 atan2(|p - g|, |p + g|), accurate near 0 and 180 degrees
            (transformer reference); ``'acos'``: acos of the clamped dot product (CNN reference).
    """

    ACCEPTED_KINDS = ('normals',)
    LOWER_IS_BETTER = frozenset({'mean', 'median', 'rmse'})
    BIN = 0.01

    def __init__(self, task: str = 'normals', angle: str = 'atan2', **kwargs):
        super().__init__(task, **kwargs)
        if angle not in ('atan2', 'acos'):
            raise ValueError(f"angle must be 'atan2' or 'acos', got {angle!r}")
        self.angle = angle

    def image_statistics(self, gt, pred):
        g = gt.reshape(3, -1).T.astype(np.float64)
        p = pred.reshape(3, -1).T.astype(np.float64)
        valid = np.abs(g).sum(1) > 0
        g, p = g[valid], p[valid]
        p = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
        # ground truth used as stored (normals_gt='stored') is within about 1% of unit
        # length: the angle is between directions, as the transformer reference computes it
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        if self.angle == 'atan2':
            ang = 2 * np.degrees(
                np.arctan2(
                    np.linalg.norm(p - g, axis=1),
                    np.linalg.norm(p + g, axis=1),
                )
            )
        else:
            ang = np.degrees(np.arccos(np.clip((p * g).sum(1), -1, 1)))
        hist = np.bincount(
            np.minimum((ang / self.BIN).astype(np.int64), int(180 / self.BIN)),
            minlength=int(180 / self.BIN) + 1,
        )
        return dict(
            n=len(ang),
            sum=ang.sum(),
            sq=(ang**2).sum(),
            hist=hist,
            within=np.array([(ang < t).sum() for t in (11.25, 22.5, 30)]),
        )

    def reduce(self, stats):
        n = max(sum(s['n'] for s in stats), 1)
        hist = np.sum([s['hist'] for s in stats], axis=0)
        cdf = np.cumsum(hist)
        total = int(cdf[-1]) if len(cdf) else 0
        if total:
            # the two middle values (equal for an odd count), as np.median does
            lo = int(np.searchsorted(cdf, (total - 1) // 2 + 1))
            hi = int(np.searchsorted(cdf, total // 2 + 1))
            median = ((lo + hi) / 2 + 0.5) * self.BIN
        else:
            median = float('nan')
        within = np.sum([s['within'] for s in stats], axis=0) / n * 100
        return dict(
            mean=sum(s['sum'] for s in stats) / n,
            median=median,
            rmse=float(np.sqrt(sum(s['sq'] for s in stats) / n)),
            within_11_25=within[0],
            within_22_5=within[1],
            within_30=within[2],
        )


@METRICS.register_module()
class SaliencyMetric(BaseTaskMetric):
    """Max F-measure over thresholds 0.05..0.95 (beta^2 = 0.3) and mIoU at 0.5, split-wide.

    Args:
        reference_double_sigmoid: compatibility switch, off by default: reproduce the
            ATRC/InvPT/CTAL evaluation bug that applies a sigmoid to the already-probabilistic
            prediction (so only thresholds 0.55-0.70 ever matter). Use only to compare with
            numbers published with that bug.
    """

    ACCEPTED_KINDS = ('saliency',)
    THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
    BETA2 = 0.3

    def __init__(
        self,
        task: str = 'saliency',
        reference_double_sigmoid: bool = False,
        ignore_index: int = IGNORE_INDEX,
        **kwargs,
    ):
        super().__init__(task, **kwargs)
        self.reference_double_sigmoid = reference_double_sigmoid
        self.ignore_index = ignore_index

    def image_statistics(self, gt, pred):
        gt, prob = gt.reshape(-1), pred.reshape(-1).astype(np.float64)
        if self.reference_double_sigmoid:
            prob = 1 / (1 + np.exp(-prob))
        valid = gt != self.ignore_index
        gt, prob = gt[valid] == 1, prob[valid]
        pos = prob[None, :] > self.THRESHOLDS[:, None]
        tp = (pos & gt[None]).sum(1)
        pred_pos = pos.sum(1)
        half = prob > 0.5
        inter = np.array([(half & gt).sum(), (~half & ~gt).sum()])
        union = np.array([(half | gt).sum(), (~half | ~gt).sum()])
        return dict(
            tp=tp, pred_pos=pred_pos, pos=gt.sum(), inter=inter, union=union
        )

    def reduce(self, stats):
        tp = np.sum([s['tp'] for s in stats], axis=0)
        pred_pos = np.sum([s['pred_pos'] for s in stats], axis=0)
        pos = sum(s['pos'] for s in stats)
        prec = tp / np.maximum(pred_pos, 1e-12)
        rec = tp / max(pos, 1e-12)
        f = (
            (1 + self.BETA2)
            * prec
            * rec
            / np.maximum(self.BETA2 * prec + rec, 1e-12)
        )
        inter = np.sum([s['inter'] for s in stats], axis=0)
        union = np.sum([s['union'] for s in stats], axis=0)
        return dict(
            maxF=float(f.max()) * 100,
            mIoU=float(np.mean(inter / np.maximum(union, 1))) * 100,
        )
