"""Inference speed: benchmark.py CONFIG [CHECKPOINT] [--num-iters N] [--warmup N].

Times ``model.test_step`` (data preprocessing + forward + post-processing) on batches of the
config's test dataloader and prints images/s. Warm-up iterations are excluded; the figure is the
median over the timed iterations. Compare implementations side by side in one run, on one
machine: absolute numbers on shared machines are noise.
"""

import argparse
import statistics
import time

import torch
from mmengine import Config, DictAction
from mmengine.runner import Runner, load_checkpoint

from ctal_mm.registry import MODELS
from ctal_mm.utils import register_all_modules


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark inference speed')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint', nargs='?', help='checkpoint (random weights if omitted)'
    )
    parser.add_argument(
        '--num-iters', type=int, default=20, help='timed iterations'
    )
    parser.add_argument(
        '--warmup', type=int, default=3, help='untimed iterations first'
    )
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu'
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings, xxx=yyy pairs merged into the config',
    )
    return parser.parse_args()


def main():
    args = parse_args()
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    loader = Runner.build_dataloader(cfg.test_dataloader)
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    model = model.to(args.device).eval()

    times, batch_sizes = [], []
    with torch.no_grad():
        data_iter = iter(loader)
        for i in range(args.warmup + args.num_iters):
            try:
                batch = next(data_iter)
            except StopIteration:
                data_iter = iter(loader)
                batch = next(data_iter)
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.test_step(batch)
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
                batch_sizes.append(len(batch['inputs']))
    per_batch = statistics.median(times)
    batch_size = statistics.median(batch_sizes)
    print(
        f'{args.config}: batch {batch_size:g}, median {per_batch * 1000:.1f} ms per batch, '
        f'{batch_size / per_batch:.2f} images/s on {args.device} '
        f'({args.num_iters} timed iterations after {args.warmup} warm-up)'
    )


if __name__ == '__main__':
    main()
