"""Parameters and FLOPs of a model: get_flops.py CONFIG [--shape H W].

Counts with mmengine's analyser (a multiply-add counts as one FLOP, as
MMSegmentation reports it) on one random image through the model's tensor
mode: backbone, neck, decoder and every task head, initial and final. The
input size is ``--shape``, else the data preprocessor's pad size, else the
size CTAL's affinity module is built for (its feature size times the
backbone stride).
"""

import argparse
import sys

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import Config, DictAction

from ctal_mm.registry import MODELS
from ctal_mm.utils import register_all_modules


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Model parameters and FLOPs')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape', type=int, nargs=2, metavar=('H', 'W'), help='input size'
    )
    parser.add_argument(
        '--show-table', action='store_true', help='per-module table'
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings, xxx=yyy pairs merged into the config',
    )
    return parser.parse_args(argv)


def input_shape(cfg, shape=None):
    """(H, W) to count at: see the module docstring."""
    if shape:
        return tuple(shape)
    preprocessor = cfg.model.get('data_preprocessor') or {}
    for size in (
        (preprocessor.get('test_cfg') or {}).get('size'),
        preprocessor.get('size'),
    ):
        if size:
            return tuple(size)
    affinity = (cfg.model.get('decoder') or {}).get('affinity') or {}
    if 'feature_size' in affinity:
        backbone = str(cfg.model.backbone.get('type', ''))
        stride = 32 if 'Swin' in backbone else 4
        return tuple(s * stride for s in affinity['feature_size'])
    raise SystemExit(
        f'{cfg.filename}: cannot tell the input size from the config; '
        'pass --shape H W.'
    )


class TensorMode(torch.nn.Module):
    """The model's ``mode='tensor'`` forward, for the analyser."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model(inputs, mode='tensor')


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = MODELS.build(cfg.model).eval()
    height, width = input_shape(cfg, args.shape)
    inputs = torch.rand(1, 3, height, width)
    with torch.no_grad():
        info = get_model_complexity_info(
            TensorMode(model),
            inputs=(inputs,),
            show_table=args.show_table,
            show_arch=False,
        )
    params = sum(p.numel() for p in model.parameters())
    if args.show_table:
        print(info['out_table'])
    line = '=' * 40
    print(
        f'{line}\nConfig: {args.config}\nInput shape: (3, {height}, {width})'
        f'\nFlops: {info["flops_str"]} ({info["flops"]:,})'
        f'\nParams: {params:,}\n{line}'
    )
    return info['flops'], params


if __name__ == '__main__':
    main()
    sys.exit(0)
