"""Rendering speed of the synthetic scenes: benchmark_synthetic.py [--shape H W] [--count N].

Times :func:`ctal_mm.datasets.synthetic.render_scene` with every task in one process (one
warm-up scene excluded) and prints images/s; docs of ``ctal_mm/datasets/synthetic.py`` quote it.
"""

import argparse
import time

from ctal_mm.datasets.synthetic import render_scene


def benchmark(height: int = 288, width: int = 384, count: int = 100) -> float:
    """Images per second of :func:`render_scene` (one process)."""
    if count < 1:
        raise ValueError(f'count={count}; expected >= 1.')
    render_scene(0, 0, height, width)
    start = time.perf_counter()
    for index in range(count):
        render_scene(0, index, height, width)
    return count / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--shape', type=int, nargs=2, default=(288, 384), metavar=('H', 'W')
    )
    parser.add_argument('--count', type=int, default=100, help='timed scenes')
    args = parser.parse_args(argv)
    rate = benchmark(args.shape[0], args.shape[1], args.count)
    print(
        f'{rate:.1f} images/s at {args.shape[0]} x {args.shape[1]} ({args.count} scenes)'
    )


if __name__ == '__main__':
    main()
