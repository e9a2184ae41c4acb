"""Convert torchvision's Swin-V2 ImageNet weights for our Swin-V2 backbone.

    python tools/model_converters/torchvision_swinv2_to_mmpretrain.py \
        swin_v2_s-637d8ceb.pth swin_v2_s_mmpretrain.pth

The CTAL reference starts its PASCAL-Context models from torchvision's
``swin_v2_s`` ImageNet-1k weights. This writes them as an mmpretrain
classifier checkpoint (keys ``backbone.*``; torchvision's ``head`` is
dropped), so that a config starts from the same weights with

    model = dict(backbone=dict(init_cfg=dict(
        type='Pretrained', checkpoint='swin_v2_s_mmpretrain.pth',
        prefix='backbone.')))

The conversion is exact (docs/models.md; a test compares both models'
features).
"""

import argparse
import io
import os.path as osp
import sys

import torch

from ctal_mm.engine.checkpoint_files import write_checkpoint
from ctal_mm.model_converters.reference_keys import convert_torchvision_swin_v2
from ctal_mm.utils.compat import UnsafeCheckpointError, safe_torch_load


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help="torchvision's swin_v2_* weights")
    parser.add_argument('dst', help='where to write the mmpretrain file')
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        raise SystemExit(f'{args.src!r} does not exist.')
    try:
        state_dict = safe_torch_load(args.src, map_location='cpu')
    except UnsafeCheckpointError as err:
        raise SystemExit(str(err)) from err
    converted, unknown = convert_torchvision_swin_v2(state_dict)
    if unknown or not converted:
        raise SystemExit(
            f'{args.src} is not a torchvision Swin-V2 state dict: '
            f'unexpected keys {unknown[:5]}.'
        )
    checkpoint = dict(
        meta=dict(converted_from=osp.abspath(args.src)),
        state_dict={'backbone.' + k: v for k, v in converted.items()},
    )
    # through <dst>.tmp and a rename: an interrupted run leaves no half file
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_checkpoint(buffer.getvalue(), args.dst)
    print(f'{args.src} -> {args.dst}: {len(converted)} backbone tensors.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
