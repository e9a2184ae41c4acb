"""The CTAL reference's checkpoints, as the tests rebuild them.

``test_models/reference_listings/`` holds, gzipped, every state-dict key and
shape of the authors' models (parameter count in the first line), as
../shared/reference/official_state_dicts/ lists them.
"""

import gzip
import math
from pathlib import Path

import torch

LISTINGS = Path(__file__).parent / 'test_models' / 'reference_listings'


def read_listing(dataset, model):
    """``{key: shape}`` of a reference listing, and its header count."""
    path = LISTINGS / f'sd_{dataset}_{model}.txt.gz'
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    header = int(lines[0].split()[-1])
    shapes = {}
    for line in lines[1:]:
        key, *shape = line.split()
        shapes[key] = (
            tuple(int(s) for s in shape[0].split('x')) if shape else ()
        )
    return shapes, header


def reference_state_dict(shapes):
    """Random tensors of the listing's shapes (what a checkpoint holds)."""
    g = torch.Generator().manual_seed(0)
    return {
        key: torch.randn(shape, generator=g)
        if 'num_batches_tracked' not in key
        else torch.tensor(3)
        for key, shape in shapes.items()
    }


def scaled_random_state_dict(shapes, seed=0):
    """Random tensors of the listing's shapes at the scales a trained
    network has, so that deep models keep finite, informative outputs:
    weights ~ N(0, 1 / fan_in), norm weights 1 + N(0, 0.1^2), biases and
    running means N(0, 0.1^2), running variances U(0.5, 1.5), class token
    and position embeddings N(0, 0.02^2). Drawn key by key in the
    listing's order from one seeded generator, so the official code (the
    fixtures' generator) and the tests draw the same tensors."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if 'num_batches_tracked' in key:
            out[key] = torch.tensor(3)
        elif 'running_var' in key:
            out[key] = 0.5 + torch.rand(shape, generator=g)
        elif key.endswith(('cls_token', 'pos_embed')):
            out[key] = 0.02 * torch.randn(shape, generator=g)
        elif len(shape) >= 2:
            fan_in = max(1, math.prod(shape[1:]))
            out[key] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        elif key.endswith('weight'):
            out[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[key] = 0.1 * torch.randn(shape, generator=g)
    return out


def write_listing(path, state_dict, count):
    """The gzipped ``key shape`` listing :func:`read_listing` reads."""
    lines = [f'parameters {count}']
    for key, value in state_dict.items():
        shape = 'x'.join(str(s) for s in value.shape)
        lines.append(f'{key} {shape}'.rstrip())
    Path(path).write_bytes(
        gzip.compress(('\n'.join(lines) + '\n').encode(), mtime=0)
    )
