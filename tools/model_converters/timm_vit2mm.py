"""Convert timm's ViT ImageNet weights for ctal_mm's PatchViT backbone.

    python tools/model_converters/timm_vit2mm.py model.safetensors \
        checkpoints/vit_large_patch16_384_448x576.pth --img-size 448 576

SRC is timm's file of ``vit_{small,base,large}_patch16_384`` (the
``augreg_in21k_ft_in1k`` weights, from the Hugging Face hub as
``model.safetensors`` or timm's older ``.pth``), the ImageNet weights the
official InvPT / TaskPrompter / MLoRE codes start from. The classifier is
dropped and the position embeddings are resampled from the file's square
grid to the training scale's (``--img-size H W``: one file per scale, as
the configs name them), bicubic as the official loaders. Every other key
must be one of PatchViT's, with its shape: a file of another model stops
the conversion naming the keys. DST holds ``backbone.*`` keys for
``init_cfg=dict(type='VerifiedPretrained', prefix='backbone.')``.
"""

import argparse
import io
import os.path as osp
import sys

import torch

from ctal_mm.engine.checkpoint_files import write_checkpoint
from ctal_mm.model_converters.official_files import (
    OfficialFileError,
    read_official_state_dict,
)
from ctal_mm.models.backbones import VIT_ARCHS, PatchViT, resample_pos_embed
from ctal_mm.utils.model_weights import (
    CheckpointMismatchError,
    check_state_dict,
)

# timm's classification parts, not in the backbone
CLASSIFIER_PREFIXES = ('head.', 'fc_norm.', 'pre_logits.')


def read_timm_file(path: str) -> dict:
    if path.endswith('.safetensors'):
        if not osp.isfile(path):
            raise OfficialFileError(f'{path!r} does not exist.')
        from safetensors.torch import load_file

        return dict(load_file(path))
    return read_official_state_dict(path)


def arch_of(state_dict: dict, path: str) -> str:
    dims = state_dict.get('cls_token', torch.empty(0)).shape[-1:]
    depth = len(
        {k.split('.')[1] for k in state_dict if k.startswith('blocks.')}
    )
    for name, (embed_dims, blocks, _) in VIT_ARCHS.items():
        if tuple(dims) == (embed_dims,) and depth == blocks:
            return name
    raise OfficialFileError(
        f'{path} is no ViT-S/B/L (cls_token of {tuple(dims)} channels, '
        f'{depth} blocks); expected one of {VIT_ARCHS}.'
    )


def convert(state_dict: dict, img_size, path: str) -> dict:
    """``backbone.*`` weights of a PatchViT at ``img_size``."""
    weights = {
        k: v
        for k, v in state_dict.items()
        if not k.startswith(CLASSIFIER_PREFIXES)
    }
    with torch.device('meta'):  # shapes only
        backbone = PatchViT(arch=arch_of(weights, path), img_size=img_size)
    grid = backbone.grid_size
    weights['pos_embed'] = resample_pos_embed(weights['pos_embed'], grid)
    check_state_dict(
        backbone.state_dict(),
        weights,
        path,
        what=f'a PatchViT at {tuple(img_size)}',
        hint=" Is it timm's vit_*_patch16_384 file?",
    )
    return {'backbone.' + k: v.contiguous() for k, v in weights.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help="timm's vit_*_patch16_384 weights")
    parser.add_argument('dst', help='where to write the ctal_mm file')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs=2,
        required=True,
        metavar=('H', 'W'),
        help='the training scale of the config (448 576 for NYUD-MT)',
    )
    args = parser.parse_args(argv)
    try:
        converted = convert(read_timm_file(args.src), args.img_size, args.src)
    except (OfficialFileError, CheckpointMismatchError) as err:
        raise SystemExit(str(err)) from err
    checkpoint = dict(
        meta=dict(
            converted_from=osp.abspath(args.src), img_size=args.img_size
        ),
        state_dict=converted,
    )
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_checkpoint(buffer.getvalue(), args.dst)
    print(f'{args.src} -> {args.dst}: {len(converted)} backbone tensors.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
