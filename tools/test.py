"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--out DIR] [--show-dir D] ...``.

The same flags as MMSegmentation's tools/test.py. ``--show-dir`` writes one panel per image
(image, and per task ground truth beside prediction); ``--out`` writes every prediction's
files (docs/inference.md: label PNGs, depth .npy and 16-bit PNGs, ...), each rank its share;
``--dump`` pickles the data samples; ``--tta`` averages each prediction with that of the
mirrored image (the config's ``tta_model`` / ``tta_pipeline``).
"""

import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from ctal_mm.engine.config_checks import ConfigError, check_config
from ctal_mm.engine.launch import (
    drop_disabled_hooks,
    finish_distributed,
    setup_cpu_distributed,
)
from ctal_mm.registry import RUNNERS
from ctal_mm.utils import register_all_modules
from ctal_mm.utils.compat import UnsafeCheckpointError
from ctal_mm.utils.model_weights import CheckpointMismatchError


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
        '--non-strict',
        action='store_true',
        help='load a checkpoint whose keys do not all fit the model (only the keys that '
        'fit are loaded; the others keep their initial values). Without it a missing, '
        'unexpected or reshaped key stops the run.',
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
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, xxx=yyy pairs merged into the config',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation: average with the mirrored image',
    )
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


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

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(args.config))[0]
        )

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

    if args.non_strict:
        cfg.load_strict = False

    # as in tools/train.py: the config's mistakes before anything is built
    if cfg.get('default_hooks', {}).get('config_check', True) is not None:
        try:
            check_config(cfg, loaders=('test_dataloader',))
        except ConfigError as error:
            sys.exit(str(error))
    drop_disabled_hooks(cfg)

    setup_cpu_distributed(cfg)
    runner = (
        Runner.from_cfg(cfg)
        if 'runner_type' not in cfg
        else RUNNERS.build(cfg)
    )
    try:
        runner.test()
    except (CheckpointMismatchError, UnsafeCheckpointError) as error:
        # the message says what is wrong and what to do; a traceback adds nothing
        sys.exit(f'{type(error).__name__}: {error}')
    del runner  # it holds the process group: see finish_distributed
    finish_distributed()


if __name__ == '__main__':
    main()
