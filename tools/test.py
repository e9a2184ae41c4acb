"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--out DIR] [--show-dir D] ...``.

The same flags as MMSegmentation's tools/test.py. ``--show-dir`` writes one panel per image
(image, and per task ground truth beside prediction); ``--out`` writes every prediction's
files (docs/inference.md: label PNGs, depth .npy and 16-bit PNGs, ...), each rank its share;
``--dump`` pickles the data samples; ``--tta`` averages each prediction with that of the
mirrored image (the config's ``tta_model`` / ``tta_pipeline``).
"""

import argparse

from ctal_mm.engine.launch import (
    add_common_arguments,
    build_tool_runner,
    check_tool_config,
    finish_distributed,
    load_tool_config,
    parse_tool_args,
    run_or_exit,
)
from ctal_mm.utils import register_all_modules


def parse_args():
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a multitask model'
    )
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir to save the evaluation metrics file'
    )
    parser.add_argument(
        '--out',
        type=str,
        help='directory to write the prediction files into (per image and task)',
    )
    parser.add_argument(
        '--dump',
        type=str,
        help='pickle file (.pkl) to dump the predictions (data samples) into',
    )
    parser.add_argument(
        '--show',
        action='store_true',
        help='show prediction panels in a window',
    )
    parser.add_argument(
        '--show-dir',
        help='directory (under the work dir, as in mmseg) where prediction panels are written',
    )
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)'
    )
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation: average with the mirrored image',
    )
    add_common_arguments(parser)
    return parse_tool_args(parser)


def use_tta(cfg):
    """Test through ``cfg.tta_model`` on ``cfg.tta_pipeline``, as mmseg's test.py; a config
    without them gets MultiTaskTTAModel on its test pipeline with a flipped view."""
    from ctal_mm.models.test_time_aug import flip_tta_pipeline

    dataset = cfg.test_dataloader.dataset
    tta_pipeline = cfg.get('tta_pipeline') or flip_tta_pipeline(
        dataset.pipeline
    )
    dataset.pipeline = tta_pipeline
    tta_model = cfg.get('tta_model') or dict(type='MultiTaskTTAModel')
    cfg.model = dict(tta_model, module=cfg.model)
    return cfg


def trigger_visualization_hook(cfg, args):
    """Make the visualisation hook draw every test image, like mmseg's test.py."""
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise RuntimeError(
            '--show / --show-dir need default_hooks.visualization '
            "(dict(type='MultiTaskVisualizationHook')) in the config; "
            f'{args.config} has none.'
        )
    hook = hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        hook['show_dir'] = args.show_dir
    return cfg


def main():
    args = parse_args()
    register_all_modules(init_default_scope=False)

    cfg = load_tool_config(args)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        cfg = use_tta(cfg)
    if args.out is not None:
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='PredictionFilesHook', out_dir=args.out)
        ]
    if args.dump is not None:
        cfg.test_evaluator = (
            cfg.test_evaluator
            if isinstance(cfg.test_evaluator, list)
            else [cfg.test_evaluator]
        )
        cfg.test_evaluator.append(
            dict(type='DumpResults', out_file_path=args.dump)
        )

    # as in tools/train.py: the config's mistakes before anything is built
    check_tool_config(cfg, loaders=('test_dataloader',))
    runner = build_tool_runner(cfg)
    run_or_exit(runner.test)
    del runner  # it holds the process group: see finish_distributed
    finish_distributed()


if __name__ == '__main__':
    main()
