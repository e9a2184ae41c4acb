"""Train one config with several multitask methods, same seed and schedule; tabulate metrics.

    python tools/analysis_tools/compare_mtl_methods.py CONFIG --work-dir DIR \
        [--methods fixed UPGrad FAMO ...] [--cfg-options KEY=VALUE ...]

Each method is a run of ``tools/train.py`` (a fresh process, the config's seed) with the
method's overrides: a gradient-level method (a torchjd aggregator name, or ``NAME-features``
for the representation-level variant) sets ``model.aggregator`` and ``JacobianOptimWrapper``;
a loss-level one sets ``model.loss_weighting``. ``--cfg-options`` apply to every run (a shorter
schedule, a smaller dataset). The script reads the last validation entry of each run's
``vis_data/scalars.json`` and prints a markdown table of the per-task metrics, one row per
method, with the wall time of the run.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

AGGREGATOR_ARGS = {'CAGrad': dict(c=0.4)}
LOSS_LEVEL = {
    'FAMO': 'FAMOWeighting',
    'GradNorm': 'GradNormWeighting',
    'GeometricMean': 'GeometricMeanWeighting',
    'IMTLL': 'IMTLLWeighting',
    'STCH': 'STCHWeighting',
    'Uncertainty': 'UncertaintyWeighting',
    'DWA': 'DWAWeighting',
    'Random': 'RandomWeighting',
}
DEFAULT_METHODS = [
    'fixed',
    'UPGrad',
    'PCGrad',
    'MGDA',
    'IMTLG',
    'AlignedMTL',
    'CAGrad',
    'NashMTL',
    *LOSS_LEVEL,
]
NOT_METRICS = {'step', 'epoch', 'iter', 'time', 'data_time', 'lr', 'memory'}


def method_options(method):
    """The ``--cfg-options`` of one method."""
    if method == 'fixed':
        return []
    if method in LOSS_LEVEL:
        return [f'model.loss_weighting.type={LOSS_LEVEL[method]}']
    name, _, variant = method.partition('-')
    if variant not in ('', 'features'):
        raise ValueError(
            f'method {method!r}: expected fixed, a loss-level name '
            f'{sorted(LOSS_LEVEL)}, a torchjd aggregator or NAME-features.'
        )
    options = [
        f'model.aggregator.type={name}',
        'optim_wrapper.type=JacobianOptimWrapper',
    ]
    options += [
        f'model.aggregator.{k}={v}'
        for k, v in AGGREGATOR_ARGS.get(name, {}).items()
    ]
    if variant:
        options.append('model.aggregator.jacobian=features')
    return options


def last_metrics(work_dir):
    """The last validation entry of the run's scalars.json (metrics only)."""
    files = sorted(
        glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json'))
    )
    if not files:
        return None
    metrics = None
    with open(files[-1]) as f:
        for line in f:
            entry = json.loads(line)
            values = {
                k: v
                for k, v in entry.items()
                if k not in NOT_METRICS and 'loss' not in k
            }
            if values and 'lr' not in entry:
                metrics = values
    return metrics


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--methods', nargs='+', default=DEFAULT_METHODS)
    parser.add_argument('--cfg-options', nargs='+', default=[])
    parser.add_argument(
        '--metrics',
        nargs='+',
        help='the metric columns (default: every metric the runs logged)',
    )
    parser.add_argument(
        '--table-only',
        action='store_true',
        help='tabulate the runs already in --work-dir, train nothing',
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    train = os.path.join(os.path.dirname(__file__), '..', 'train.py')
    rows = []
    if not args.table_only:
        os.makedirs(args.work_dir, exist_ok=True)
    for method in args.methods:
        work_dir = os.path.join(args.work_dir, method)
        seconds = None
        if not args.table_only:
            cmd = [
                sys.executable,
                train,
                args.config,
                '--work-dir',
                work_dir,
                '--cfg-options',
                *args.cfg_options,
                *method_options(method),
            ]
            start = time.perf_counter()
            with open(
                os.path.join(args.work_dir, f'{method}.log'), 'w'
            ) as log:
                proc = subprocess.run(
                    cmd, stdout=log, stderr=subprocess.STDOUT
                )
            seconds = time.perf_counter() - start
            status = 'ok' if proc.returncode == 0 else f'rc {proc.returncode}'
            print(f'{method}: {status}, {seconds:.0f} s', flush=True)
        rows.append((method, last_metrics(work_dir), seconds))
    keys = args.metrics or sorted({k for _, m, _ in rows if m for k in m})
    print('\n| method | ' + ' | '.join(keys) + ' | run s |')
    print('|---' * (len(keys) + 2) + '|')
    for method, metrics, seconds in rows:
        cells = [
            '-' if not metrics or k not in metrics else f'{metrics[k]:.4g}'
            for k in keys
        ]
        run = '-' if seconds is None else f'{seconds:.0f}'
        print(f'| {method} | ' + ' | '.join(cells) + f' | {run} |')
    return 0 if all(m for _, m, _ in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
