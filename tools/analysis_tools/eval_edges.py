"""Score saved edge predictions offline: eval_edges.py PRED_DIR GT_DIR [options].

The BSDS protocol of the online ``EdgeMetric`` (ODS-F, OIS-F, AP over ``--thresholds``
thresholds, one-to-one matching within ``--max-dist`` x image diagonal, optional NMS), on the
files of two folders, so that released predictions of other methods are scored exactly as
ours are (as the field does with SEISM). Files are paired by name without extension:
``PRED_DIR/<id>.png`` (8- or 16-bit grayscale strength, or ``<id>.npy`` probabilities) with
``GT_DIR/<id>.png`` / ``<id>.npy`` (edge where > 0; ``--ignore-value`` pixels count as
non-edge). ``--nproc`` worker processes read and score the images; a progress bar shows the
ETA. ``--out`` writes the scores and the per-threshold totals as JSON.

``--plot PR.png`` draws the precision-recall curve (ODS point marked) to a picture, with the
curves of other runs' ``--out`` files beside it (``--plot-with A.json B.json``).
``--compare-pyedgeeval`` also scores the same maps with pyEdgeEval (its counts, its
``calculate_metrics``) and prints both sets of numbers and their differences; pyEdgeEval's
matching draws random outlier edges, so rerunning it moves its numbers a little (see
docs/benchmarks.md for how much), and it takes 28 to 38 times as long per image (measured
ratios 0.0265 and 0.0363, docs/benchmarks.md).

    python tools/analysis_tools/eval_edges.py work_dirs/preds data/PASCAL_MT/edge \\
        --max-dist 0.0075 --nms --nproc 4
"""

import argparse
import json
import multiprocessing
import os
import os.path as osp
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor

import numpy as np

EXTENSIONS = ('.png', '.npy')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Score saved edge predictions (ODS/OIS/AP)'
    )
    parser.add_argument('pred_dir', help='folder of predictions')
    parser.add_argument('gt_dir', help='folder of ground-truth edge maps')
    parser.add_argument(
        '--max-dist',
        type=float,
        default=0.0075,
        help='matching radius / image diagonal (0.0075 PASCAL-Context, 0.011 NYUD)',
    )
    parser.add_argument(
        '--nms', action='store_true', help='apply the edge NMS first'
    )
    parser.add_argument(
        '--nproc', type=int, default=os.cpu_count() or 1, help='workers'
    )
    parser.add_argument(
        '--thresholds', type=int, default=99, help='number of thresholds'
    )
    parser.add_argument(
        '--ignore-value',
        type=int,
        default=None,
        help='ground-truth value that is neither edge nor background (e.g. 255)',
    )
    parser.add_argument('--out', help='write the scores as JSON here')
    parser.add_argument(
        '--plot', help='draw the precision-recall curve to this picture'
    )
    parser.add_argument(
        '--plot-with',
        nargs='+',
        default=[],
        metavar='JSON',
        help='--out files of other runs whose curves --plot draws beside',
    )
    parser.add_argument(
        '--compare-pyedgeeval',
        action='store_true',
        help='score the same maps with pyEdgeEval too and print both',
    )
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bar'
    )
    return parser.parse_args(argv)


def _index(folder, what):
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{what} folder {folder!r} does not exist.')
    files = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = osp.splitext(name)
        if ext.lower() in EXTENSIONS:
            if stem in files:
                raise ValueError(
                    f'{folder}: {stem!r} is there twice ({osp.basename(files[stem])} '
                    f'and {name}); keep one.'
                )
            files[stem] = osp.join(folder, name)
    return files


def pair_files(pred_dir, gt_dir):
    """(id, prediction path, ground-truth path) for every ground truth, sorted by id."""
    preds, gts = _index(pred_dir, 'prediction'), _index(gt_dir, 'ground-truth')
    if not gts:
        raise FileNotFoundError(
            f'{gt_dir} has no {"/".join(EXTENSIONS)} ground-truth files.'
        )
    missing = sorted(set(gts) - set(preds))
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of the {len(gts)} ground truths have no prediction in '
            f'{pred_dir} (first: {missing[:3]}); every image must be scored.'
        )
    return [(k, preds[k], gts[k]) for k in sorted(gts)]


def _progress(total, enabled, label='scoring edges'):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn('ETA'),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def pyedgeeval_counts_of_files(
    pred_path, gt_path, thresholds, max_dist, nms, ignore_value=None
):
    """pyEdgeEval's counts (4 x T) of a saved prediction, read and quantised to 8 bits as
    :func:`edge_counts_of_files` reads it, so both see the same maps."""
    from pyEdgeEval.common.binary_label.evaluate_boundaries import (
        evaluate_boundaries_threshold,
    )

    from ctal_mm.evaluation.edge_counts import (
        read_edge_ground_truth,
        read_edge_prediction,
    )

    pred = read_edge_prediction(pred_path)
    gt = read_edge_ground_truth(gt_path, ignore_value)
    if pred.shape != gt.shape:
        raise ValueError(
            f'{pred_path} is {pred.shape} but its ground truth {gt_path} is '
            f'{gt.shape}; save predictions at the ground-truth size.'
        )
    pred_u8 = np.round(pred * 255).astype(np.uint8)
    return np.array(
        evaluate_boundaries_threshold(
            np.asarray(thresholds),
            pred_u8 / 255.0,
            gt,
            max_dist=max_dist,
            apply_thinning=True,
            apply_nms=nms,
        )
    )


# pyEdgeEval's calculate_metrics keys for ours
PYEDGEEVAL_KEYS = dict(
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


def pyedgeeval_scores(counts, thresholds):
    """pyEdgeEval's ``calculate_metrics`` of per-image counts, in ctal_mm's keys and %."""
    from pyEdgeEval.common.binary_label.calculate_metrics import (
        calculate_metrics,
    )

    samples = [dict(name=str(i), counts=c) for i, c in enumerate(counts)]
    # (it draws its own progress bar over these counts: its writer is fixed at import)
    _, _, ref = calculate_metrics(
        lambda sample: sample['counts'],
        list(thresholds),
        samples,
        nproc=1,
    )
    return {
        key: float(ref[ref_key]) * (1 if key == 'ods_threshold' else 100)
        for key, ref_key in PYEDGEEVAL_KEYS.items()
    }


def _collect_counts(pairs, counts_of_files, job, nproc, progress, label):
    counts = []
    with _progress(len(pairs), progress, label) as bar:
        task = bar.add_task('edges', total=len(pairs))
        if nproc <= 1:
            for _, pred, gt in pairs:
                counts.append(counts_of_files(pred, gt, *job))
                bar.advance(task)
            return counts
        context = multiprocessing.get_context('fork')
        with ProcessPoolExecutor(nproc, mp_context=context) as pool:
            pending = deque()
            for _, pred, gt in pairs:
                pending.append(pool.submit(counts_of_files, pred, gt, *job))
                while len(pending) > 4 * nproc:
                    counts.append(pending.popleft().result())
                    bar.advance(task)
            while pending:
                counts.append(pending.popleft().result())
                bar.advance(task)
    return counts


def evaluate_folders(
    pred_dir,
    gt_dir,
    max_dist=0.0075,
    nms=False,
    nproc=1,
    num_thresholds=99,
    ignore_value=None,
    progress=True,
    pyedgeeval=False,
):
    """Scores (those of ``edge_scores`` and ``num_images``) and the per-threshold curve
    (thresholds, recall, precision) of the folders' images; with ``pyedgeeval``, pyEdgeEval's
    counts and ``calculate_metrics`` instead of ctal_mm's."""
    from ctal_mm.evaluation import edge_thresholds
    from ctal_mm.evaluation.edge_counts import (
        edge_counts_of_files,
        edge_scores,
        recall_precision,
    )

    pairs = pair_files(pred_dir, gt_dir)
    thresholds = edge_thresholds(num_thresholds)
    job = (thresholds, max_dist, nms, ignore_value)
    if pyedgeeval:
        counts = _collect_counts(
            pairs,
            pyedgeeval_counts_of_files,
            job,
            nproc,
            progress,
            'pyEdgeEval',
        )
        scores = pyedgeeval_scores(counts, thresholds)
    else:
        counts = _collect_counts(
            pairs, edge_counts_of_files, job, nproc, progress, 'scoring edges'
        )
        scores = edge_scores(counts, thresholds)
    rec, prec = recall_precision(np.sum(counts, axis=0))
    scores.update(num_images=len(pairs))
    return scores, dict(
        thresholds=thresholds.tolist(),
        recall=rec.tolist(),
        precision=prec.tolist(),
    )


def _summary(scores):
    return (
        f'{scores["num_images"]} images: ODS-F {scores["odsF"]:.2f} '
        f'(threshold {scores["ods_threshold"]:.3f})  OIS-F {scores["oisF"]:.2f}  '
        f'AP {scores["AP"]:.2f}  AUC {scores["AUC"]:.2f}'
    )


def comparison_table(ours, theirs):
    """Both score sets side by side, one row per number, with ours - pyEdgeEval."""
    lines = [
        f'{"":15s} {"ctal_mm":>9s} {"pyEdgeEval":>11s} {"difference":>11s}'
    ]
    for key in PYEDGEEVAL_KEYS:
        digits = 3 if key == 'ods_threshold' else 2
        lines.append(
            f'{key:15s} {ours[key]:9.{digits}f} {theirs[key]:11.{digits}f} '
            f'{ours[key] - theirs[key]:+11.{digits}f}'
        )
    return '\n'.join(lines)


def load_result(path):
    """(scores, curve) of a file written by ``--out``."""
    with open(path) as f:
        saved = json.load(f)
    curve = saved.get('curve') if isinstance(saved, dict) else None
    if not isinstance(curve, dict) or not {'recall', 'precision'} <= set(
        curve
    ):
        raise ValueError(
            f'{path}: no "curve" with "recall" and "precision"; pass files written '
            'by eval_edges.py --out.'
        )
    return saved.get('scores', {}), curve


def plot_curves(path, results):
    """Draw the precision-recall curves of ``results`` (label -> (scores, curve)) to the
    picture ``path`` (format from its extension), each curve's ODS point marked."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for f in np.arange(0.1, 1, 0.1):  # iso-F lines, as the BSDS plots have
        recall = np.linspace(
            f / 2 + 1e-3, 1, 100
        )  # F = f needs recall > f / 2
        precision = f * recall / (2 * recall - f)
        keep = precision <= 1
        ax.plot(recall[keep], precision[keep], color='0.85', lw=0.6)
    for label, (scores, curve) in results.items():
        rec, prec = np.asarray(curve['recall']), np.asarray(curve['precision'])
        keep = (rec > 0) | (prec > 0)  # thresholds that kept nothing
        name = label
        if 'odsF' in scores:
            name += f' (ODS {scores["odsF"]:.2f}, AP {scores["AP"]:.2f})'
        (line,) = ax.plot(rec[keep], prec[keep], lw=1.5, label=name)
        if 'ods_recall' in scores:
            ax.plot(
                scores['ods_recall'] / 100,
                scores['ods_precision'] / 100,
                'o',
                color=line.get_color(),
            )
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel='Recall', ylabel='Precision')
    ax.legend(loc='lower left', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    if args.nproc < 1 or args.thresholds < 1 or args.max_dist <= 0:
        sys.exit('--nproc and --thresholds must be >= 1, --max-dist > 0.')
    if args.plot_with and not args.plot:
        sys.exit('--plot-with draws beside --plot; give --plot PICTURE too.')
    others = {
        osp.splitext(osp.basename(p))[0]: load_result(p)
        for p in args.plot_with
    }
    kwargs = dict(
        max_dist=args.max_dist,
        nms=args.nms,
        nproc=args.nproc,
        num_thresholds=args.thresholds,
        ignore_value=args.ignore_value,
        progress=not args.no_progress,
    )
    scores, curve = evaluate_folders(args.pred_dir, args.gt_dir, **kwargs)
    print(_summary(scores))
    saved = dict(scores=scores, curve=curve)
    results = {'ctal_mm': (scores, curve)}
    if args.compare_pyedgeeval:
        ref, ref_curve = evaluate_folders(
            args.pred_dir, args.gt_dir, pyedgeeval=True, **kwargs
        )
        print('pyEdgeEval ' + _summary(ref))
        print(comparison_table(scores, ref))
        saved.update(pyedgeeval_scores=ref, pyedgeeval_curve=ref_curve)
        results['pyEdgeEval'] = (ref, ref_curve)
    if args.plot:
        plot_curves(args.plot, {**results, **others})
        print(f'precision-recall curve: {args.plot}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(saved, args=vars(args)), f, indent=2)
    return scores


if __name__ == '__main__':
    main()
