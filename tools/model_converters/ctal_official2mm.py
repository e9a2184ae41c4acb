"""Convert a checkpoint of the official CTAL code to a ctal_mm checkpoint.

    python tools/model_converters/ctal_official2mm.py SRC DST --config CONFIG

SRC is a file saved by the authors' code (a bare state dict, or a dict
holding one under ``model`` or ``state_dict``; DataParallel's ``module.``
prefix is removed). CONFIG is the ctal_mm config of the same model and tasks,
e.g. ``configs/ctal/ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py``: the model is
built from it, every converted tensor is checked against it and loaded into
it, so a checkpoint of another model, task set or input size fails here with
the key at fault, not later. DST is an mmengine checkpoint
(``{'meta': ..., 'state_dict': ...}``) for ``tools/test.py CONFIG DST`` or
``load_from``.

The key mapping is ``ctal_mm.model_converters.reference_keys`` (docs/models.md).
"""

import argparse
import io
import os.path as osp
import sys

import torch

from ctal_mm.engine.checkpoint_files import write_checkpoint
from ctal_mm.engine.config_loading import add_cfg_options_argument, load_config
from ctal_mm.model_converters.official_files import (
    OfficialFileError,
    read_official_state_dict,
)
from ctal_mm.model_converters.reference_keys import (
    MODELS as REFERENCE_MODELS,
)
from ctal_mm.model_converters.reference_keys import (
    SWIN_RECOMPUTED_BUFFERS,
    convert_reference_state_dict,
)
from ctal_mm.registry import MODELS
from ctal_mm.utils import register_all_modules

# our decoder (or model) type -> the reference's model name
REFERENCE_MODEL_OF = {
    'CTALDecoder': 'ctal',
    'HPSDecoder': 'hps',
    'SingleTaskEncoderDecoder': 'stl',
    'PADNetDecoder': 'padnet',
    'PAPNetDecoder': 'papnet',
    'MTINetDecoder': 'mti_net',
    'MultiScaleCTALDecoder': 'm_ctal',
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official CTAL checkpoint to ctal_mm.'
    )
    parser.add_argument('src', help='checkpoint written by the CTAL code')
    parser.add_argument('dst', help='where to write the ctal_mm checkpoint')
    parser.add_argument(
        '--config',
        required=True,
        help='ctal_mm config of the same model, tasks and input size',
    )
    parser.add_argument(
        '--model',
        choices=REFERENCE_MODELS,
        help='the reference model (default: from the config)',
    )
    parser.add_argument(
        '--trust-pickle',
        action='store_true',
        help='load SRC with weights_only=False (runs pickled code: only '
        'for files you trust that hold more than tensors)',
    )
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def reference_model_name(model_cfg) -> str:
    for type_name in (model_cfg.get('type'), model_cfg.decoder.get('type')):
        if type_name in REFERENCE_MODEL_OF:
            return REFERENCE_MODEL_OF[type_name]
    raise SystemExit(
        f'Cannot tell which reference model the config builds (model type '
        f'{model_cfg.get("type")!r}, decoder {model_cfg.decoder.get("type")!r}); '
        f'pass --model, one of {REFERENCE_MODELS}.'
    )


def read_state_dict(path: str, trust_pickle: bool) -> dict:
    try:
        return read_official_state_dict(path, trust_pickle)
    except OfficialFileError as err:
        raise SystemExit(str(err)) from err


def main(argv=None) -> int:
    args = parse_args(argv)
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    model_cfg = cfg.model
    reference_model = args.model or reference_model_name(model_cfg)
    model = MODELS.build(model_cfg)
    backbone_type = str(model_cfg.backbone.get('type', ''))
    tree = 'transformer' if 'Swin' in backbone_type else 'cnn'

    state_dict = read_state_dict(args.src, args.trust_pickle)
    target = model.state_dict()
    try:
        converted, unmapped = convert_reference_state_dict(
            state_dict, reference_model, tree, target=target
        )
    except (KeyError, ValueError) as err:
        raise SystemExit(f'{args.src}: {err}') from err
    if unmapped:
        raise SystemExit(
            f'{len(unmapped)} keys of {args.src} have no place in a '
            f'{reference_model} ({tree}) model, e.g. {unmapped[:5]}: is '
            '--config (or --model) the model this checkpoint was trained as?'
        )
    try:
        missing, unexpected = model.load_state_dict(converted, strict=False)
    except RuntimeError as err:  # size mismatches
        raise SystemExit(
            f'{args.src} does not fit {args.config}: {err}'
        ) from err
    missing = [k for k in missing if not SWIN_RECOMPUTED_BUFFERS.search(k)]
    if missing or unexpected:
        raise SystemExit(
            f'{args.src} does not fill {args.config}: missing {missing[:5]}, '
            f'unexpected {unexpected[:5]}.'
        )

    checkpoint = dict(
        meta=dict(
            converted_from=osp.abspath(args.src),
            reference_model=reference_model,
            config=osp.abspath(args.config),
        ),
        state_dict=converted,
    )
    # through <dst>.tmp and a rename: an interrupted run leaves no half file
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_checkpoint(buffer.getvalue(), args.dst)
    print(
        f'{args.src} -> {args.dst}: {len(converted)} tensors of a '
        f'{reference_model} ({tree}) model, all loaded into {args.config}.'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
