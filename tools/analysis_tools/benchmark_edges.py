"""Edge evaluation speed and agreement: ours against pyEdgeEval, side by side in one run.

    python tools/analysis_tools/benchmark_edges.py [--sections per_image distributed memory
        protocol] [--images 2] [--reruns 5] [--split 16] [--json out.json]

Sections (each prints one table; ``--json`` saves all numbers):

* ``per_image``: ``--images`` synthetic scenes at 512 x 512 (edges of ``render_scene``, soft
  predictions with misses, offsets and texture edges), 99 thresholds, NMS, one core: seconds
  per image of ``edge_counts`` and of pyEdgeEval's ``evaluate_boundaries_threshold`` on the
  same predictions, and ODS / OIS of each over ``--reruns`` reruns (min, max).
* ``distributed``: ``EdgeMetric`` (process + evaluate) over a split of ``--split`` images on one
  process and on 2 gloo processes (half each), alternating ``--reruns`` times: median wall time of
  the slowest rank, the ratio's range, and whether every run gave the same numbers.
* ``memory``: peak resident memory of a fresh process streaming N = 50 and N = 400 images
  (256 x 256, 2 workers) through the metric; main process and its largest worker.
* ``agreement``: the four map families of the tests (``map_families``), ours over
  ``--family-runs`` seeds and pyEdgeEval over as many reruns: the distributions of ODS /
  OIS / AP side by side, and how often pyEdgeEval misses the issue's yardstick itself.
* ``protocol``: on ``--protocol-images`` scenes, how far ODS / OIS / AP with 15 and 33
  thresholds, and on fixed subsets of the split, move from the full protocol.

The projection of a PASCAL-Context validation (5,105 images) uses the per-image time measured
here. Absolute times depend on the machine's load: compare within one run.
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time

os.environ.setdefault(
    'OMP_NUM_THREADS', '1'
)  # one core per evaluating process

import numpy as np  # noqa: E402
from scipy import ndimage as ndi  # noqa: E402

PASCAL_VAL_IMAGES = 5105
SECTIONS = ('per_image', 'distributed', 'memory', 'protocol', 'agreement')
FAMILIES = ('blurred', 'shifted', 'wide', 'noisy')
# the families' protocol: small enough for many pyEdgeEval reruns, a radius of 4.3 px that
# leaves the matching ambiguity to resolve
FAMILY_SIZE, FAMILY_SEEDS, FAMILY_MAX_DIST, FAMILY_THRESHOLDS = (
    96,
    (0, 1),
    0.03,
    9,
)


def scene_edges(index, height, width):
    from ctal_mm.datasets.synthetic import render_scene

    return render_scene(7, index, height, width)['edge'].astype(bool)


def soft_prediction(gt, rng):
    """A plausible edge detector output for ``gt``: blurred, partly missed, slightly offset,
    with texture edges of its own and low-level noise."""
    keep = ndi.gaussian_filter(rng.random(gt.shape), 6) > rng.uniform(
        0.45, 0.5
    )
    shift = tuple(rng.integers(-1, 2, 2))
    found = np.roll(gt, shift, axis=(0, 1)) & keep
    texture = ndi.gaussian_filter(rng.random(gt.shape), 6) > 0.5
    texture = np.abs(np.diff(texture, axis=0, prepend=False))
    texture &= ndi.gaussian_filter(rng.random(gt.shape), 10) > 0.5
    strength = found * rng.uniform(0.5, 1.0, gt.shape) + texture * 0.4
    soft = ndi.gaussian_filter(strength.astype(np.float64), 0.9) * 2
    soft += rng.uniform(0, 0.01, gt.shape) * (rng.random(gt.shape) < 0.05)
    return np.clip(soft, 0, 1)


def map_families(size=FAMILY_SIZE, seed=0):
    """One thin ground truth (as SEISM's are) and 8-bit soft maps of four kinds for it:
    blurred truth + sparse noise, truth shifted (1, 2) px + blur + noise, wide soft
    responses, mostly noise with a weak signal."""
    from ctal_mm.datasets.synthetic import render_scene
    from ctal_mm.evaluation.edge_counts import thin_edges

    rng = np.random.default_rng(seed)
    gt = thin_edges(render_scene(7, seed, size, size)['edge'])
    sparse = (rng.random(gt.shape) < 0.02) * rng.uniform(0, 0.6, gt.shape)
    shifted = np.roll(gt, (1, 2), (0, 1)) * 1.0
    maps = dict(
        blurred=ndi.gaussian_filter(gt * 1.0, 1.0) * 2.5 + sparse,
        shifted=ndi.gaussian_filter(shifted, 1.0) * 2.5 + sparse,
        wide=ndi.gaussian_filter(gt * 1.0, 3.0) * 6,
        noisy=rng.random(gt.shape) * 0.6
        + ndi.gaussian_filter(gt * 1.0, 1.0) * 0.8,
    )
    return gt, {
        k: np.round(np.clip(v, 0, 1) * 255).astype(np.uint8)
        for k, v in maps.items()
    }


def family_scores(family, runs, matching='bsds'):
    """Scores of one family over the FAMILY_SEEDS images, ``runs`` times each way:
    ours with seeds 0..runs-1 and pyEdgeEval rerun (it draws its outlier edges at random).
    Returns (ours, pyEdgeEval): lists of edge_scores dicts."""
    from pyEdgeEval.common.binary_label.evaluate_boundaries import (
        evaluate_boundaries_threshold,
    )

    from ctal_mm.evaluation import edge_thresholds
    from ctal_mm.evaluation.edge_counts import edge_counts, edge_scores

    thresholds = edge_thresholds(FAMILY_THRESHOLDS)
    images = [map_families(FAMILY_SIZE, s) for s in FAMILY_SEEDS]
    ours, ref = [], []
    for run in range(runs):
        counts = [
            edge_counts(
                maps[family],
                gt,
                thresholds,
                FAMILY_MAX_DIST,
                nms=True,
                matching=matching,
                seed=run,
            )
            for gt, maps in images
        ]
        ours.append(edge_scores(counts, thresholds))
        counts = [
            np.array(
                evaluate_boundaries_threshold(
                    thresholds,
                    maps[family] / 255.0,
                    gt,
                    max_dist=FAMILY_MAX_DIST,
                    apply_nms=True,
                )
            )
            for gt, maps in images
        ]
        ref.append(edge_scores(counts, thresholds))
    return ours, ref


def make_split(count, height, width, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        gt = scene_edges(i, height, width)
        out.append(
            (np.round(soft_prediction(gt, rng) * 255).astype(np.uint8), gt)
        )
    return out


# ----------------------------------------------------------------- per image
def per_image(args):
    from pyEdgeEval.common.binary_label.evaluate_boundaries import (
        evaluate_boundaries_threshold,
    )

    from ctal_mm.evaluation import edge_thresholds
    from ctal_mm.evaluation.edge_counts import edge_counts, edge_scores

    split = make_split(args.images, 512, 512)
    thresholds = edge_thresholds(99)
    edge_counts(split[0][0][:32, :32], split[0][1][:32, :32], thresholds[:2])
    above = float(np.mean([(p > 2).mean() for p, _ in split]))
    ours_t, ref_t, ours_s, ref_s = [], [], [], []
    for _ in range(args.reruns):
        counts_ours, counts_ref = [], []
        for pred, gt in split:
            t = time.perf_counter()
            counts_ours.append(
                edge_counts(pred, gt, thresholds, 0.0075, nms=True)
            )
            ours_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            counts_ref.append(
                np.array(
                    evaluate_boundaries_threshold(
                        thresholds,
                        pred / 255.0,
                        gt,
                        max_dist=0.0075,
                        apply_thinning=True,
                        apply_nms=True,
                    )
                )
            )
            ref_t.append(time.perf_counter() - t)
        ours_s.append(edge_scores(counts_ours, thresholds))
        ref_s.append(edge_scores(counts_ref, thresholds))
    row = dict(
        images=args.images,
        reruns=args.reruns,
        pixels_above_0_01=above,
        ours_s_per_image=float(np.median(ours_t)),
        ref_s_per_image=float(np.median(ref_t)),
    )
    row['time_ratio'] = row['ours_s_per_image'] / row['ref_s_per_image']
    row['load_average'] = os.getloadavg()
    for key in ('odsF', 'oisF', 'AP'):
        for name, runs in (('ours', ours_s), ('ref', ref_s)):
            values = [r[key] for r in runs]
            row[f'{name}_{key}_min'] = min(values)
            row[f'{name}_{key}_max'] = max(values)
    row['projection_pascal_val_h'] = {
        '2 cores, ours': PASCAL_VAL_IMAGES
        * row['ours_s_per_image']
        / 2
        / 3600,
        '8 ranks x 4 cores, ours': PASCAL_VAL_IMAGES
        * row['ours_s_per_image']
        / 32
        / 3600,
        '2 cores, pyEdgeEval': PASCAL_VAL_IMAGES
        * row['ref_s_per_image']
        / 2
        / 3600,
    }
    print(
        f'per image (512x512, 99 thresholds, NMS, one core, {args.images} images x '
        f'{args.reruns} reruns; {above:.1%} of pixels above 0.01):\n'
        f'  ours {row["ours_s_per_image"]:.3f} s, pyEdgeEval '
        f'{row["ref_s_per_image"]:.2f} s: ratio {row["time_ratio"]:.4f}'
    )
    for key in ('odsF', 'oisF', 'AP'):
        print(
            f'  {key}: ours {row[f"ours_{key}_min"]:.2f}-{row[f"ours_{key}_max"]:.2f}'
            f'  pyEdgeEval {row[f"ref_{key}_min"]:.2f}-{row[f"ref_{key}_max"]:.2f}'
        )
    for where, hours in row['projection_pascal_val_h'].items():
        print(
            f'  PASCAL-Context val (5,105 images), {where}: {hours * 60:.1f} min'
        )
    return row


# ----------------------------------------------------------------- distributed
def _metric_time(rank, world, count, queue, port):
    import torch.distributed as dist

    from ctal_mm.evaluation import EdgeMetric

    if world > 1:
        os.environ.update(
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT=str(port),
            RANK=str(rank),
            WORLD_SIZE=str(world),
        )
        dist.init_process_group('gloo', rank=rank, world_size=world)
    samples = _samples(make_split(count, 512, 512)[rank::world])
    metric = EdgeMetric(nms=True, nproc=1)
    metric.image_statistics(np.eye(8)[None], np.eye(8)[None])  # compile
    metric.results.clear()
    if world > 1:
        dist.barrier()
    t, cpu = time.perf_counter(), time.process_time()
    for sample in samples:
        metric.process(None, [sample])
    scores = metric.evaluate(count)
    cpu = time.process_time() - cpu
    if world > 1:
        dist.barrier()
    elapsed = time.perf_counter() - t
    queue.put((rank, elapsed, cpu, scores))
    if world > 1:
        dist.destroy_process_group()


def _samples(split):
    import torch

    from ctal_mm.structures import MultiTaskDataSample

    out = []
    for pred, gt in split:
        s = MultiTaskDataSample()
        s.set_gt('edge', torch.as_tensor(gt[None].astype(np.int64)))
        s.set_pred('edge', torch.as_tensor(pred[None] / 255.0))
        out.append(s.to_dict())
    return out


def _run_world(world, count):
    import torch.multiprocessing as mp

    ctx = mp.get_context('spawn')
    queue = ctx.SimpleQueue()
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.start_processes(
        _metric_time,
        args=(world, count, queue, port),
        nprocs=world,
        join=True,
        start_method='spawn',
    )
    ranks = sorted(queue.get() for _ in range(world))
    return dict(
        wall=max(r[1] for r in ranks),
        cpu=max(r[2] for r in ranks),
        scores=ranks[0][3],
    )


def distributed(args):
    # 1 and 2 processes alternate, so that a change in the machine's load touches both sides.
    runs = {1: [], 2: []}
    for _ in range(args.reruns):
        for world in (1, 2):
            runs[world].append(_run_world(world, args.split))
    ratios = sorted(
        two['wall'] / one['wall'] for one, two in zip(runs[1], runs[2])
    )
    cpu_ratios = sorted(
        two['cpu'] / one['cpu'] for one, two in zip(runs[1], runs[2])
    )
    median = lambda values: float(np.median(values))  # noqa: E731
    row = dict(
        split=args.split,
        reruns=args.reruns,
        one_process_s=median([r['wall'] for r in runs[1]]),
        two_processes_s=median([r['wall'] for r in runs[2]]),
        ratio=median(ratios),
        ratio_min_max=(ratios[0], ratios[-1]),
        one_process_cpu_s=median([r['cpu'] for r in runs[1]]),
        two_processes_max_rank_cpu_s=median([r['cpu'] for r in runs[2]]),
        cpu_ratio=median(cpu_ratios),
        same_numbers=all(
            r['scores'] == runs[1][0]['scores'] for r in runs[1] + runs[2]
        ),
        scores=runs[1][0]['scores'],
        load_average=os.getloadavg(),
    )
    print(
        f'whole metric, {args.split} images at 512x512 (NMS, 99 thresholds), median of '
        f'{args.reruns} alternating reruns: one process {row["one_process_s"]:.2f} s, 2 gloo '
        f'processes {row["two_processes_s"]:.2f} s (wall, slowest rank): ratio '
        f'{row["ratio"]:.2f} (min {ratios[0]:.2f}, max {ratios[-1]:.2f}); CPU seconds of the '
        f'busiest rank {row["one_process_cpu_s"]:.2f} vs '
        f'{row["two_processes_max_rank_cpu_s"]:.2f}: ratio {row["cpu_ratio"]:.2f}; same numbers: '
        f'{row["same_numbers"]}; load average {row["load_average"][0]:.1f} on '
        f'{os.cpu_count()} cores'
    )
    return row


# ----------------------------------------------------------------- memory
def _memory_child(count):
    from ctal_mm.evaluation import EdgeMetric

    rng = np.random.default_rng(1)
    gts = [scene_edges(i, 256, 256) for i in range(8)]
    metric = EdgeMetric(nms=True, nproc=2)
    for i in range(count):  # images arrive one at a time, as from a ValLoop
        gt = gts[i % len(gts)]
        prob = soft_prediction(gt, rng)[None]
        metric.results.append(
            metric.image_statistics(gt[None].astype(np.int64), prob)
        )
    metric.flush()
    print(
        json.dumps(
            dict(
                main_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                / 1024,
                worker_mb=resource.getrusage(
                    resource.RUSAGE_CHILDREN
                ).ru_maxrss
                / 1024,
            )
        )
    )


def memory(args):
    row = {}
    for count in (50, 400):
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, '--memory-child', str(count)],
            capture_output=True,
            text=True,
            check=True,
        )
        row[count] = json.loads(out.stdout.strip().splitlines()[-1])
        row[count]['seconds'] = time.perf_counter() - t
        print(
            f'memory, N={count} images at 256x256 streamed (2 workers): peak RSS main '
            f'{row[count]["main_mb"]:.0f} MB, largest worker '
            f'{row[count]["worker_mb"]:.0f} MB ({row[count]["seconds"]:.0f} s)'
        )
    return row


# ----------------------------------------------------------------- protocol
def protocol(args):
    from ctal_mm.evaluation import edge_thresholds
    from ctal_mm.evaluation.edge_counts import edge_counts, edge_scores

    split = make_split(args.protocol_images, 288, 384, seed=3)
    rows = {}
    per_setting = {}
    for num in (99, 33, 15):
        t = time.perf_counter()
        counts = [
            edge_counts(p, g, edge_thresholds(num), 0.0075, nms=True)
            for p, g in split
        ]
        seconds = (time.perf_counter() - t) / len(split)
        per_setting[num] = counts
        rows[f'{num} thresholds'] = dict(
            edge_scores(counts, edge_thresholds(num)), s_per_image=seconds
        )
    full = rows['99 thresholds']
    for every in (2, 4):
        for num in (99, 33):
            rows[f'every {every}th image, {num} thresholds'] = edge_scores(
                per_setting[num][::every], edge_thresholds(num)
            )
    print(
        f'protocol, {args.protocol_images} scenes at 288x384, NMS, max_dist 0.0075 '
        '(difference from 99 thresholds on all images):'
    )
    for name, r in rows.items():
        diff = {k: r[k] - full[k] for k in ('odsF', 'oisF', 'AP')}
        r.update({f'd_{k}': v for k, v in diff.items()})
        print(
            f'  {name:32s} ODS {r["odsF"]:.2f} ({diff["odsF"]:+.2f})  OIS {r["oisF"]:.2f} '
            f'({diff["oisF"]:+.2f})  AP {r["AP"]:.2f} ({diff["AP"]:+.2f})'
            + (
                f'  {r["s_per_image"] * 1000:.0f} ms/image'
                if 's_per_image' in r
                else ''
            )
        )
    return rows


# ----------------------------------------------------------------- agreement
def agreement(args):
    """Per family, ours over ``--family-runs`` seeds and pyEdgeEval over as many reruns:
    mean, standard deviation and range of ODS / OIS / AP; and how often pyEdgeEval's own
    next rerun misses the issue's single-run yardstick (ODS / OIS within max(0.05, 3 x the
    range of 3 reruns) of their mean, AP within 0.1), over all triples of its reruns."""
    from itertools import combinations

    rows = {}
    print(
        f'agreement, {len(FAMILY_SEEDS)} images of {FAMILY_SIZE}x{FAMILY_SIZE}, '
        f'{FAMILY_THRESHOLDS} thresholds, NMS, maxDist {FAMILY_MAX_DIST}, '
        f'{args.family_runs} runs each way (mean +- std [min, max]):'
    )
    for family in FAMILIES:
        ours, ref = family_scores(family, args.family_runs)
        rows[family] = {}
        for key in ('odsF', 'oisF', 'AP'):
            a = np.array([r[key] for r in ours])
            b = np.array([r[key] for r in ref])
            misses = total = 0
            for triple in combinations(range(len(b)), 3):
                three = b[list(triple)]
                tolerance = 0.1
                if key != 'AP':
                    tolerance = max(0.05, 3 * np.ptp(three))
                for other in set(range(len(b))) - set(triple):
                    total += 1
                    misses += abs(b[other] - three.mean()) > tolerance
            rows[family][key] = dict(
                ours=(a.mean(), a.std(), a.min(), a.max()),
                ref=(b.mean(), b.std(), b.min(), b.max()),
                ref_self_miss_rate=misses / max(total, 1),
            )
            print(
                f'  {family:8s} {key:5s} ours {a.mean():.3f} +- {a.std():.3f} '
                f'[{a.min():.2f}, {a.max():.2f}]  pyEdgeEval {b.mean():.3f} +- '
                f'{b.std():.3f} [{b.min():.2f}, {b.max():.2f}]  difference '
                f'{a.mean() - b.mean():+.3f}; pyEdgeEval misses its own yardstick '
                f'{misses / max(total, 1):.1%}'
            )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--sections', nargs='+', default=list(SECTIONS), choices=SECTIONS
    )
    parser.add_argument('--images', type=int, default=2)
    parser.add_argument('--reruns', type=int, default=5)
    parser.add_argument('--split', type=int, default=16)
    parser.add_argument('--protocol-images', type=int, default=60)
    parser.add_argument(
        '--family-runs',
        type=int,
        default=30,
        help='agreement: runs of each side per map family',
    )
    parser.add_argument('--json', help='save every number here')
    parser.add_argument('--memory-child', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return _memory_child(args.memory_child)
    out = {}
    for section in args.sections:
        out[section] = globals()[section](args)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2, default=str)


if __name__ == '__main__':
    main()
