"""Turn a training checkpoint into a release file: ``publish_model.py IN OUT``.

Drops what only resuming needs (the optimizer, the parameter schedulers, the message
hub), keeps the weights and ``meta`` (the config, the dataset meta, the versions of
ctal_mm, torch and mmengine), and writes ``OUT-<first 8 hex digits of its sha256>.pth``
(``OUT`` with or without ``.pth``), the name torch hub and OpenMMLab give released
weights. Every load of such a file checks the name against the file's sha256 and its
content hash (``ctal_mm.utils.checkpoint_integrity``). Prints the path written.
"""

import argparse
import hashlib
import io
import os.path as osp

import mmengine
import torch

from ctal_mm.engine.checkpoint_files import atomic_write
from ctal_mm.utils.checkpoint_integrity import add_content_hash
from ctal_mm.utils.compat import safe_torch_load
from ctal_mm.version import __version__

# what a Runner checkpoint holds for resuming only
RESUME_ONLY = ('optimizer', 'param_schedulers', 'message_hub')


def publishable(checkpoint: dict, source: str) -> dict:
    """``checkpoint`` without its resume-only state, with the versions in ``meta``."""
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise ValueError(
            f'{source}: not a training checkpoint (no "state_dict" key; keys: '
            f'{sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__}).'
        )
    meta = dict(checkpoint.get('meta') or {})
    meta.update(
        ctal_mm_version=__version__,
        torch_version=str(torch.__version__),  # TorchVersion: not weights_only
        mmengine_version=str(mmengine.__version__),
    )
    kept = {k: v for k, v in checkpoint.items() if k not in RESUME_ONLY}
    kept['meta'] = meta
    return kept


def publish(src: str, out: str) -> str:
    """Write the release file of ``src``; returns its path."""
    checkpoint = publishable(safe_torch_load(src, map_location='cpu'), src)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    add_content_hash(buffer, buffer.getvalue())
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    stem = out[: -len('.pth')] if out.endswith('.pth') else out
    path = f'{stem}-{digest[:8]}.pth'
    atomic_write(data, path)
    return path


def parse_args():
    parser = argparse.ArgumentParser(
        description='Publish a checkpoint: drop the optimizer and other resume '
        'state, name it by its sha256.'
    )
    parser.add_argument('in_file', help='checkpoint written by training')
    parser.add_argument(
        'out_file', help='release file name; -<sha256[:8]>.pth is appended'
    )
    return parser.parse_args()


def main():
    args = parse_args()
    if not osp.isfile(args.in_file):
        raise SystemExit(f'{args.in_file} does not exist.')
    print(publish(args.in_file, args.out_file))


if __name__ == '__main__':
    main()
