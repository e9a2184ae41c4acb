"""Training-step speed and peak memory, variants side by side.

    python tools/analysis_tools/benchmark_train.py CONFIG \
        [--variant NAME KEY=VALUE ...] ... [--batch-size 2] [--iters 5]

Each variant is the config with ``--cfg-options``-style overrides (default:
CTAL's ``plain`` and ``factored`` affinity implementations, and ``factored``
with activation checkpointing of the backbone, neck and decoder). Every variant
runs in a fresh process, one after the other, on the same random batch
(``ctal_mm.testing.random_multitask_batch``, the config's input size): the
first ``--warmup`` steps are not timed, then the median of ``--iters`` full
training steps (data preprocessing, forward, backward, optimiser step).
Two memory columns. "peak": what the process took from the machine, on
CPU its max RSS (Python, torch and the other libraries, which alone hold most
of a GiB, the allocator's free-but-kept memory, and the tensors), on GPU
``torch.cuda.max_memory_reserved``. "tensors": the most tensor memory live
at once (parameters, optimiser state, batch and the step's activations), on
GPU ``torch.cuda.max_memory_allocated``, on CPU the tensors alive before a
step plus the highest point of one more profiled step's allocation events.
Before timing, each process computes the loss and the gradient once from the same
initial weights, so the table also shows that the variants compute the same
function. Ratios are against the first variant. Absolute times on shared
machines are noise; ratios from one run are what to compare. ``--rounds R``
runs every variant R times, alternating (variant 1, 2, ..., then again), each
in a fresh process, and reports the median over all rounds' timed steps, so a
load change on a shared machine hits every variant alike.

Special keys: ``amp=1`` (mixed precision as ``tools/train.py --amp``: bf16
autocast on CPU, fp16 on GPU), ``compile=1`` (``torch.compile`` of the
train step, as ``compile=True`` in a config).
"""

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time

DEFAULT_VARIANTS = [
    ['plain', 'model.decoder.affinity.implementation=plain'],
    ['factored', 'model.decoder.affinity.implementation=factored'],
    [
        'factored+cp',
        'model.decoder.affinity.implementation=factored',
        'model.decoder.with_cp=true',
        'model.with_cp=true',
    ],
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Time training steps of config variants side by side'
    )
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--variant',
        nargs='+',
        action='append',
        metavar='NAME [KEY=VALUE ...]',
        help='a variant: a name and config overrides (repeatable)',
    )
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--iters', type=int, default=5, help='timed steps')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps')
    parser.add_argument(
        '--rounds',
        type=int,
        default=1,
        help='run every variant once per round, alternating, and report the '
        "median over all rounds' timed steps (tensor memory: first round)",
    )
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'), help='input size'
    )
    parser.add_argument('--device', default=None, help='cpu or cuda')
    parser.add_argument(
        '--threads', type=int, default=None, help='torch CPU threads'
    )
    parser.add_argument(
        '--json', help='also write the results to this JSON file'
    )
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument(
        '--no-memory', action='store_true', help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def _value(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _loss_and_gradient_norm(cfg, batch, device, cast_dtype=None):
    """The function a variant computes: the summed loss and the norm of its gradient
    from the initial weights (seed 0). A gradient-level method (``model.aggregator``)
    changes how the step combines the task gradients, not the function: it is left
    out here, so the plain backward pass cannot collide with its engine's hooks.
    ``cast_dtype``: the variant's autocast dtype (mixed precision), if any."""
    from contextlib import nullcontext

    import torch

    from ctal_mm.registry import MODELS

    model_cfg = cfg.model.copy()
    model_cfg.pop('aggregator', None)
    model_cfg.pop('shared_modules', None)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).to(device).train()
    data = model.data_preprocessor(batch, True)
    autocast = (
        nullcontext()
        if cast_dtype is None
        else torch.autocast(
            device_type=torch.device(device).type, dtype=cast_dtype
        )
    )
    with autocast:
        losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()
    grad_norm = torch.sqrt(
        sum(
            p.grad.double().pow(2).sum()
            for p in model.parameters()
            if p.grad is not None
        )
    ).item()
    return loss.item(), grad_norm


def run_variant(args, overrides):
    """Inside a fresh process: one variant's numbers, as a dict."""
    import torch
    from mmengine.optim import build_optim_wrapper

    from ctal_mm.apis import model_input_size
    from ctal_mm.engine.config_loading import load_config
    from ctal_mm.engine.launch import enable_amp
    from ctal_mm.registry import MODELS
    from ctal_mm.testing import random_multitask_batch
    from ctal_mm.utils import register_all_modules

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    register_all_modules()
    special = {}
    options = {}
    for item in overrides:
        key, _, text = item.partition('=')
        if key in ('amp', 'compile'):
            special[key] = bool(_value(text))
        else:
            options[key] = _value(text)
    cfg = load_config(args.config, options)
    if special.get('amp'):
        enable_amp(cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device).train()
    size = tuple(args.shape) if args.shape else model_input_size(model, cfg)
    if size is None:
        raise SystemExit(
            f'{args.config}: the model accepts any input size and the config '
            'fixes none; pass --shape H W.'
        )
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = random_multitask_batch(cfg.model.tasks, size, args.batch_size)
    loss_value, grad_norm = _loss_and_gradient_norm(
        cfg, batch, device, getattr(optim_wrapper, 'cast_dtype', None)
    )
    gc.collect()

    train_step = model.train_step
    if special.get('compile'):
        train_step = torch.compile(train_step)

    def sync():
        if device.startswith('cuda'):
            torch.cuda.synchronize()

    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(args.warmup + args.iters):
        sync()
        start = time.perf_counter()
        train_step(batch, optim_wrapper)
        sync()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    if device.startswith('cuda'):
        peak = torch.cuda.max_memory_reserved()
        tensor_peak = torch.cuda.max_memory_allocated()
    else:  # KiB on Linux; read before the profiled step adds its records
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        tensor_peak = None
        if not args.no_memory:
            tensor_peak = _live_cpu_tensor_bytes() + _cpu_step_tensor_rise(
                lambda: train_step(batch, optim_wrapper)
            )
    return dict(
        step_s=statistics.median(times),
        times=times,
        peak_bytes=peak,
        tensor_peak_bytes=tensor_peak,
        loss=loss_value,
        grad_norm=grad_norm,
        device=device,
        input_size=list(size),
    )


def _live_cpu_tensor_bytes():
    """Bytes of the CPU tensors alive now (each storage once)."""
    import torch

    storages = {}
    for obj in gc.get_objects():
        # type(), not isinstance(): a weak proxy to a dead object raises on
        # isinstance, and a proxy to a tensor would count it twice anyway
        if issubclass(type(obj), torch.Tensor) and obj.device.type == 'cpu':
            storage = obj.untyped_storage()
            try:
                address = storage.data_ptr()
            except RuntimeError:  # functional tensors (torch.compile)
                continue
            if address:  # 0: fake tensors, empty storages
                storages[address] = storage.nbytes()
    return sum(storages.values())


def _cpu_step_tensor_rise(step):
    """The highest point, above the start, of the CPU tensor memory that
    ``step()`` allocates and frees, replayed from the profiler's allocation
    events (torch keeps no allocation statistics for CPU)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as p:
        step()
    # the raw events: the summarised ones fold allocations into their ops
    changes = sorted(
        (event.start_ns(), event.nbytes())
        for event in p.profiler.kineto_results.events()
        if event.name() == '[memory]'
    )
    live = highest = 0
    for _, nbytes in changes:
        live += nbytes
        highest = max(highest, live)
    return highest


def main(argv=None):
    args = parse_args(argv)
    if args.worker is not None:
        result = run_variant(args, json.loads(args.worker))
        print('RESULT ' + json.dumps(result))
        return 0

    variants = args.variant or DEFAULT_VARIANTS
    base = [a for a in (argv if argv is not None else sys.argv[1:])]
    # the worker gets the shared flags, without the variants
    shared = []
    skip = False
    for token in base:
        if token == '--variant':
            skip = True
            continue
        if skip and not token.startswith('--'):
            continue
        skip = False
        shared.append(token)
    results = [
        dict(name=name, overrides=overrides, times=[], round_s=[])
        for name, *overrides in variants
    ]
    for round_index in range(args.rounds):
        for result in results:
            if result.get('failed'):
                continue
            cmd = [
                sys.executable,
                os.path.abspath(__file__),
                *shared,
                '--worker',
                json.dumps(result['overrides']),
            ]
            if round_index > 0:
                cmd.append('--no-memory')
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [
                line
                for line in proc.stdout.splitlines()
                if line.startswith('RESULT ')
            ]
            if proc.returncode != 0 or not lines:
                print(
                    f'variant {result["name"]} failed:\n{proc.stderr[-3000:]}'
                )
                result['failed'] = True
                continue
            measured = json.loads(lines[-1][len('RESULT ') :])
            times = result['times'] + measured.pop('times')
            round_s = result['round_s'] + [measured.pop('step_s')]
            if round_index > 0:
                for key in ('tensor_peak_bytes', 'peak_bytes'):
                    measured.pop(key)
            result.update(measured, times=times, round_s=round_s)
            result['step_s'] = statistics.median(times)
            tensors = result['tensor_peak_bytes']
            print(
                f'round {round_index + 1} {result["name"]}: '
                f'{round_s[-1]:.3f} s/step, tensors '
                + ('-' if tensors is None else f'{tensors / 2**30:.2f} GiB')
                + f' (load {os.getloadavg()[0]:.1f})',
                flush=True,
            )

    ok = [r for r in results if not r.get('failed')]
    if not ok:
        return 1
    first = ok[0]
    print(
        f'\n{args.config}  batch {args.batch_size}  input '
        f'{first["input_size"][0]}x{first["input_size"][1]}  '
        f'device {first["device"]}  median of {args.iters} steps x '
        f'{args.rounds} rounds, load average now {os.getloadavg()[0]:.1f}'
    )
    header = (
        f'{"variant":<16}{"s/step":>9}{"time x":>8}{"peak GiB":>10}'
        f'{"mem x":>7}{"tensors GiB":>13}{"tens. x":>9}{"loss":>12}'
        f'{"|grad|":>14}'
    )
    print(header + '\n' + '-' * len(header))
    for r in results:
        if r.get('failed'):
            print(f'{r["name"]:<16}  failed')
            continue
        print(
            f'{r["name"]:<16}{r["step_s"]:>9.3f}'
            f'{r["step_s"] / first["step_s"]:>8.2f}'
            f'{r["peak_bytes"] / 2**30:>10.2f}'
            f'{r["peak_bytes"] / first["peak_bytes"]:>7.2f}'
            f'{r["tensor_peak_bytes"] / 2**30:>13.2f}'
            f'{r["tensor_peak_bytes"] / first["tensor_peak_bytes"]:>9.2f}'
            f'{r["loss"]:>12.6f}{r["grad_norm"]:>14.8g}'
        )
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
