"""Score saved edge predictions offline: eval_edges.py PRED_DIR GT_DIR [options].

The BSDS protocol of the online ``EdgeMetric`` (ODS-F, OIS-F, AP over ``--thresholds``
thresholds, one-to-one matching within ``--max-dist`` x image diagonal, optional NMS), on the
files of two folders, so that released predictions of other methods are scored exactly as
ours are (as the field does with SEISM). Files are paired by name without extension:
``PRED_DIR/<id>.png`` (8- or 16-bit grayscale strength, or ``<id>.npy`` probabilities) with
``GT_DIR/<id>.png`` / ``<id>.npy`` (edge where > 0; ``--ignore-value`` pixels count as
non-edge). ``--nproc`` worker processes read and score the images; a progress bar shows the
ETA. ``--out`` writes the scores and the per-threshold totals as JSON.

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


def _progress(total, enabled):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn('scoring edges'),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn('ETA'),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def evaluate_folders(
    pred_dir,
    gt_dir,
    max_dist=0.0075,
    nms=False,
    nproc=1,
    num_thresholds=99,
    ignore_value=None,
    progress=True,
):
    """Scores (``odsF``, ``oisF``, ``AP``, ``ods_threshold``, ``num_images``) and the
    per-threshold totals of the folders' images."""
    from ctal_mm.evaluation import edge_thresholds
    from ctal_mm.evaluation.edge_counts import (
        edge_counts_of_files,
        edge_scores,
        recall_precision,
    )

    pairs = pair_files(pred_dir, gt_dir)
    thresholds = edge_thresholds(num_thresholds)
    job = (thresholds, max_dist, nms, ignore_value)
    counts = []
    with _progress(len(pairs), progress) as bar:
        task = bar.add_task('edges', total=len(pairs))
        if nproc <= 1:
            for _, pred, gt in pairs:
                counts.append(edge_counts_of_files(pred, gt, *job))
                bar.advance(task)
        else:
            context = multiprocessing.get_context('fork')
            with ProcessPoolExecutor(nproc, mp_context=context) as pool:
                pending = deque()
                for _, pred, gt in pairs:
                    pending.append(
                        pool.submit(edge_counts_of_files, pred, gt, *job)
                    )
                    while len(pending) > 4 * nproc:
                        counts.append(pending.popleft().result())
                        bar.advance(task)
                while pending:
                    counts.append(pending.popleft().result())
                    bar.advance(task)
    scores = edge_scores(counts, thresholds)
    rec, prec = recall_precision(np.sum(counts, axis=0))
    scores.update(num_images=len(pairs))
    return scores, dict(
        thresholds=thresholds.tolist(),
        recall=rec.tolist(),
        precision=prec.tolist(),
    )


def main(argv=None):
    args = parse_args(argv)
    if args.nproc < 1 or args.thresholds < 1 or args.max_dist <= 0:
        sys.exit('--nproc and --thresholds must be >= 1, --max-dist > 0.')
    scores, curve = evaluate_folders(
        args.pred_dir,
        args.gt_dir,
        max_dist=args.max_dist,
        nms=args.nms,
        nproc=args.nproc,
        num_thresholds=args.thresholds,
        ignore_value=args.ignore_value,
        progress=not args.no_progress,
    )
    print(
        f'{scores["num_images"]} images: ODS-F {scores["odsF"]:.2f} '
        f'(threshold {scores["ods_threshold"]:.3f})  OIS-F {scores["oisF"]:.2f}  '
        f'AP {scores["AP"]:.2f}  AUC {scores["AUC"]:.2f}'
    )
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(
                dict(scores=scores, curve=curve, args=vars(args)), f, indent=2
            )
    return scores


if __name__ == '__main__':
    main()
