"""What the content hash costs when a checkpoint is saved (and checked when loaded).

``python tools/analysis_tools/benchmark_checkpoint_hash.py [CONFIG] [--repeat N]``

Builds the model of CONFIG (default: the NYUv2 CTAL config) without pretrained weights,
takes one AdamW step so the optimizer holds its state, and saves the checkpoint a Runner
would write (weights, optimizer, meta) into a temporary folder, alternately without and
with the content hash, N times each. Prints the median times, side by side in one run:
the save without the hash (``torch.save`` + atomic write), the save with it, the hash's
share, a sha256 over every tensor's bytes (the alternative not taken) and the check on
load (``verify_checkpoint``) against ``torch.load``.
"""

import argparse
import hashlib
import io
import os.path as osp
import statistics
import tempfile
import time

import torch

from ctal_mm.engine.checkpoint_files import atomic_write, write_checkpoint
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import MODELS
from ctal_mm.utils import register_all_modules
from ctal_mm.utils.checkpoint_integrity import verify_checkpoint

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT = osp.join(
    REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py'
)


def build_checkpoint(config: str) -> dict:
    register_all_modules()
    cfg = load_config(config, {'model.backbone.init_cfg': None})
    model = MODELS.build(cfg.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    optimizer.step()
    return dict(
        meta=dict(epoch=1, iter=100, cfg=cfg.pretty_text),
        state_dict=model.state_dict(),
        optimizer=optimizer.state_dict(),
    )


def tensors(value):
    if torch.is_tensor(value):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from tensors(v)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', default=DEFAULT)
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()
    checkpoint = build_checkpoint(args.config)

    def serialise():
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        return buffer.getvalue()

    plain, hashed, sha, verify, load = [], [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'epoch_1.pth')
        for _ in range(args.repeat):
            plain.append(timed(lambda: atomic_write(serialise(), path)))
            hashed.append(timed(lambda: write_checkpoint(serialise(), path)))
            sha.append(
                timed(
                    lambda: [
                        hashlib.sha256(
                            t.detach()
                            .contiguous()
                            .view(-1)
                            .view(torch.uint8)
                            .numpy()
                        )
                        for t in tensors(checkpoint)
                    ]
                )
            )
            verify.append(timed(lambda: verify_checkpoint(path)))
            load.append(
                timed(lambda: torch.load(path, weights_only=False, mmap=False))
            )
        size = osp.getsize(path)
    med = statistics.median
    print(
        f'checkpoint: {size / 2**20:.1f} MB ({args.config}), median of {args.repeat}'
    )
    print(f'save without hash: {med(plain) * 1e3:.1f} ms')
    print(
        f'save with hash:    {med(hashed) * 1e3:.1f} ms '
        f'({(med(hashed) / med(plain) - 1) * 100:+.1f} %)'
    )
    print(
        f'sha256 of every tensor (not used): {med(sha) * 1e3:.1f} ms '
        f'({med(sha) / med(plain) * 100:.0f} % of the save)'
    )
    print(
        f'verify on load: {med(verify) * 1e3:.1f} ms; torch.load: '
        f'{med(load) * 1e3:.1f} ms'
    )


if __name__ == '__main__':
    main()
