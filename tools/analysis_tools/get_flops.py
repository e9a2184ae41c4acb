"""Parameters and FLOPs of a model: get_flops.py CONFIG [--shape H W].

Counts with mmengine's ``FlopAnalyzer`` (a multiply-add counts as one FLOP,
as MMSegmentation reports it) on one random image through the model's tensor
mode, in total and per part: backbone, neck, and each part of the decoder
(for CTAL: initial heads, the cross-task affinity module, final heads). The
input size is ``--shape``, else :func:`ctal_mm.apis.model_input_size` (the
size CTAL's affinity module is built for, else the data preprocessor's pad
size, else the test dataset's ``img_size``).
"""

import argparse
import sys

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.print_helper import complexity_stats_table

from ctal_mm.apis import model_input_size
from ctal_mm.engine.config_loading import add_cfg_options_argument, load_config
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
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


class TensorMode(torch.nn.Module):
    """The model's ``mode='tensor'`` forward, for the analyser."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model(inputs, mode='tensor')


def model_parts(model):
    """``[(name, module)]``: backbone, neck, then each part of the decoder."""
    parts = [('backbone', model.backbone)]
    if getattr(model, 'neck', None) is not None:
        parts.append(('neck', model.neck))
    children = list(model.decoder.named_children())
    parts += [(f'decoder.{name}', child) for name, child in children]
    return parts


def count(model, height, width):
    """Total FLOPs, and ``[(part, params, flops)]``."""
    wrapped = TensorMode(model)
    inputs = torch.rand(1, 3, height, width)
    with torch.no_grad():
        analyzer = FlopAnalyzer(wrapped, (inputs,))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        by_module = analyzer.by_module()
    rows = [
        (
            name,
            sum(p.numel() for p in module.parameters()),
            by_module[f'model.{name}'],
        )
        for name, module in model_parts(model)
    ]
    # ops of the model itself (resizing predictions to the input size)
    rows.append(('other', 0, analyzer.total() - sum(r[2] for r in rows)))
    return analyzer, analyzer.total(), rows


def main(argv=None):
    args = parse_args(argv)
    register_all_modules()
    cfg = load_config(args.config, args.cfg_options)
    model = MODELS.build(cfg.model).eval()
    size = tuple(args.shape) if args.shape else model_input_size(model, cfg)
    if size is None:
        raise SystemExit(
            f'{cfg.filename}: the model accepts any input size and the config '
            'fixes none; pass --shape H W.'
        )
    height, width = size
    analyzer, flops, rows = count(model, height, width)
    params = sum(p.numel() for p in model.parameters())
    if args.show_table:
        print(complexity_stats_table(analyzer, max_depth=4))
    line = '=' * 60
    print(
        f'{line}\nConfig: {args.config}\nInput shape: (3, {height}, {width})'
    )
    print(f'{"part":<28}{"params":>14}{"GFLOPs":>12}{"share":>7}')
    for name, part_params, part_flops in rows:
        print(
            f'{name:<28}{part_params:>14,}{part_flops / 1e9:>12.3f}'
            f'{part_flops / max(flops, 1):>7.1%}'
        )
    print(f'{"total":<28}{params:>14,}{flops / 1e9:>12.3f}{1:>7.0%}')
    print(f'Flops: {flops / 1e9:.3f}G ({flops:,})\nParams: {params:,}\n{line}')
    return flops, params, rows


if __name__ == '__main__':
    main()
    sys.exit(0)
