"""Convert a checkpoint of the official InvPT code to a ctal_mm checkpoint.

    python tools/model_converters/mtt2mm.py SRC DST \
        --config configs/invpt/invpt_vitl16_1xb2-40k_nyud-mt-448x576.py

SRC is a file saved by ``prismformore/Multi-Task-Transformer`` (InvPT/):
the state dict under ``model`` (with DataParallel's ``module.`` prefix, as
its released checkpoints) or at the top level. CONFIG is the ctal_mm config
of the same model, tasks and training scale: the model is built from it and
the converted state dict must fill it exactly (every key of SRC used, every
key of the model filled, every shape equal), or the conversion stops naming
the keys at fault. DST is an mmengine checkpoint (``{'meta', 'state_dict'}``)
for ``tools/test.py CONFIG DST`` or ``load_from``.

The key mapping is ``ctal_mm.model_converters.mtt_keys`` (docs/models.md).
"""

import argparse
import io
import os.path as osp
import sys

import torch

from ctal_mm.engine.checkpoint_files import write_checkpoint
from ctal_mm.engine.config_loading import add_cfg_options_argument, load_config
from ctal_mm.model_converters.mtt_keys import (
    KEY_MAPPERS,
    convert_mtt_state_dict,
)
from ctal_mm.model_converters.official_files import (
    OfficialFileError,
    read_official_state_dict,
)
from ctal_mm.registry import MODELS
from ctal_mm.utils import register_all_modules
from ctal_mm.utils.model_weights import (
    CheckpointMismatchError,
    check_state_dict,
)

# our decoder type -> the official method
METHOD_OF_DECODER = {'InvPTDecoder': 'invpt'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='checkpoint written by the official code')
    parser.add_argument('dst', help='where to write the ctal_mm checkpoint')
    parser.add_argument(
        '--config',
        required=True,
        help='ctal_mm config of the same model, tasks and training scale',
    )
    parser.add_argument(
        '--method',
        choices=sorted(KEY_MAPPERS),
        help='the official method (default: from the config decoder type)',
    )
    parser.add_argument(
        '--trust-pickle',
        action='store_true',
        help='load SRC with weights_only=False (runs pickled code: only '
        'for files you trust that hold more than tensors)',
    )
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    decoder_type = cfg.model.decoder.get('type')
    method = args.method or METHOD_OF_DECODER.get(decoder_type)
    if method is None:
        raise SystemExit(
            f'{args.config}: decoder {decoder_type!r} is none of the official '
            f'methods this converter knows ({sorted(METHOD_OF_DECODER)}); '
            'pass --method.'
        )
    model = MODELS.build(cfg.model)
    try:
        state_dict = read_official_state_dict(args.src, args.trust_pickle)
        converted = convert_mtt_state_dict(
            state_dict, method, model.decoder.task_names
        )
        check_state_dict(
            model.state_dict(),
            converted,
            args.src,
            what=f'the {method} model of {args.config}',
            hint=' Is --config the model, task set and training scale '
            'this checkpoint was trained with?',
        )
    except (OfficialFileError, ValueError, CheckpointMismatchError) as err:
        raise SystemExit(str(err)) from err
    model.load_state_dict(converted, strict=True)
    checkpoint = dict(
        meta=dict(
            converted_from=osp.abspath(args.src),
            official_method=method,
            config=osp.abspath(args.config),
        ),
        state_dict=converted,
    )
    # through <dst>.tmp and a rename: an interrupted run leaves no half file
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_checkpoint(buffer.getvalue(), args.dst)
    print(
        f'{args.src} -> {args.dst}: {len(converted)} tensors of the official '
        f'{method} model, all loaded into {args.config}.'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
