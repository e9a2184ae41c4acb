"""Inference speed: benchmark.py CONFIG [CHECKPOINT] [--num-iters N] [--warmup N] [--inferencer].

Times ``model.test_step`` (data preprocessing + forward + post-processing) on batches of the
config's test dataloader and prints images/s. With ``--inferencer`` it times instead, side by
side in one run (alternating), the model's forward alone on one image at the config's input
size and MultiTaskInferencer end to end on image files of that size (read, resize, forward,
map back, write every task's files and the panel), and prints both and the inferencer's own
overhead. Warm-up iterations are excluded; the figures are medians over the timed iterations.
Compare side by side in one run, on one machine: absolute numbers on shared machines are noise.
"""

import argparse
import statistics
import time

import torch
from mmengine.runner import Runner

from ctal_mm.engine.config_loading import add_cfg_options_argument, load_config
from ctal_mm.registry import MODELS
from ctal_mm.utils import register_all_modules
from ctal_mm.utils.model_weights import load_model_weights


def benchmark_inferencer(cfg, args) -> dict:
    """Median seconds per image of the forward alone and of the inferencer end to end."""
    import os.path as osp
    import tempfile

    import cv2

    from ctal_mm.apis import MultiTaskInferencer, init_model, model_input_size
    from ctal_mm.datasets.synthetic import render_scene

    model = init_model(cfg, args.checkpoint, args.device)
    size = tuple(args.shape) if args.shape else model_input_size(model)
    if size is None:
        raise SystemExit('The config fixes no input size: pass --shape H W.')
    inferencer = MultiTaskInferencer(model, show_progress=False)
    pre = model.data_preprocessor
    times = dict(forward=[], inferencer=[])
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(4):
            path = osp.join(tmp, f'scene{i}.png')
            img = render_scene(seed=7, index=i, height=size[0], width=size[1])
            cv2.imwrite(path, img['img'][..., ::-1])
            files.append(path)
        image = torch.from_numpy(
            cv2.imread(files[0])[..., ::-1].transpose(2, 0, 1).copy()
        )
        for i in range(args.warmup + args.num_iters):
            start = time.perf_counter()
            with torch.no_grad():
                model.decode(pre(dict(inputs=[image]), False)['inputs'])
            middle = time.perf_counter()
            inferencer(files[i % len(files)], out_dir=osp.join(tmp, 'out'))
            end = time.perf_counter()
            if i >= args.warmup:
                times['forward'].append(middle - start)
                times['inferencer'].append(end - middle)
    forward = statistics.median(times['forward'])
    end_to_end = statistics.median(times['inferencer'])
    print(
        f'{args.config} at {size[0]}x{size[1]} on {args.device}, '
        f'{torch.get_num_threads()} threads, median of {args.num_iters} '
        f'(after {args.warmup} warm-up), alternating:'
    )
    print('| what | ms / image | images / s |')
    print('|---|---|---|')
    print(f'| model forward alone | {forward * 1e3:.1f} | {1 / forward:.2f} |')
    print(
        f'| inferencer, file in -> files out | {end_to_end * 1e3:.1f} | '
        f'{1 / end_to_end:.2f} |'
    )
    overhead = (end_to_end - forward) / forward
    print(f'inferencer overhead: {overhead * 100:.1f}% of a forward')
    return dict(forward=forward, inferencer=end_to_end, overhead=overhead)


def parse_args(argv=None):
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
        '--inferencer',
        action='store_true',
        help='the inferencer end to end (file in, files out) beside the forward',
    )
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help="--inferencer: image size (default: the config's input size)",
    )
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)

    if args.inferencer:
        return benchmark_inferencer(cfg, args)

    loader = Runner.build_dataloader(cfg.test_dataloader)
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        load_model_weights(model, args.checkpoint)
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
