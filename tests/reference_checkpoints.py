"""The CTAL reference's checkpoints, as the tests rebuild them.

``test_models/reference_listings/`` holds, gzipped, every state-dict key and
shape of the authors' models (parameter count in the first line), as
../shared/reference/official_state_dicts/ lists them.
"""

import gzip
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
