"""Look at what a config's training pipeline feeds the model: the image and every task's labels.

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir DIR --not-show [--num N]

builds ``train_dataloader.dataset`` of CONFIG, runs its pipeline on the first N samples (all by
default) and writes ``DIR/<index>_<image name>.png`` per sample: the image and, per task, its
ground truth as the model will see it (after flips, crops and scaling). Without ``--not-show`` each
panel is also shown in a window for ``--show-interval`` seconds.
"""

import argparse
import os
import os.path as osp
import sys

from mmengine.utils import ProgressBar

from ctal_mm.engine.config_loading import add_cfg_options_argument, load_config
from ctal_mm.registry import DATASETS, VISUALIZERS
from ctal_mm.utils import register_all_modules


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the training samples of a config, one panel each'
    )
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--output-dir',
        default=None,
        help='directory to write the panels into (PNG, one per sample)',
    )
    parser.add_argument(
        '--not-show',
        action='store_true',
        help='do not show the panels in a window',
    )
    parser.add_argument(
        '--show-interval',
        type=float,
        default=2,
        help='seconds each shown panel stays on screen',
    )
    parser.add_argument(
        '--num',
        type=int,
        default=None,
        help='draw only the first NUM samples (default: all)',
    )
    add_cfg_options_argument(parser, 'train_dataloader.dataset.num_samples=4')
    args = parser.parse_args(argv)
    if args.output_dir is None and args.not_show:
        parser.error(
            'with --not-show and no --output-dir nothing would be drawn: '
            'give --output-dir DIR.'
        )
    if args.num is not None and args.num < 1:
        parser.error(f'--num {args.num}: give a positive number of samples.')
    return args


def build_visualizer(cfg):
    """The config's visualizer without its backends: panels go to files or a window only."""
    vis_cfg = dict(cfg.get('visualizer') or dict(type='MultiTaskVisualizer'))
    vis_cfg['vis_backends'] = None
    vis_cfg.pop('save_dir', None)
    vis_cfg.setdefault('name', 'browse_dataset')
    visualizer = VISUALIZERS.build(vis_cfg)
    if not hasattr(visualizer, 'draw_panel'):
        raise TypeError(
            f'{cfg.filename}: visualizer is {type(visualizer).__name__}, '
            'which cannot draw multitask samples; set '
            "visualizer=dict(type='MultiTaskVisualizer')."
        )
    return visualizer


def dataset_task_kinds(dataset):
    """task -> kind from the dataset's metainfo, so that every panel lists the same tasks."""
    meta = getattr(dataset, 'metainfo', None) or {}
    kinds = meta.get('task_kinds')
    if isinstance(kinds, dict):
        return dict(kinds)
    return {}


def sample_name(index, data_sample):
    """``<index>_<image file stem>``, or the index alone for in-memory samples."""
    path = data_sample.metainfo.get('img_path')
    if not path:
        return f'{index:05d}'
    return f'{index:05d}_{osp.splitext(osp.basename(path))[0]}'


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    register_all_modules()

    loader_cfg = cfg.get('train_dataloader')
    if not loader_cfg or 'dataset' not in loader_cfg:
        sys.exit(
            f'{args.config} has no train_dataloader.dataset: browse_dataset '
            'draws the training set; use a full training config.'
        )
    dataset = DATASETS.build(loader_cfg['dataset'])
    visualizer = build_visualizer(cfg)
    visualizer.dataset_meta = dataset.metainfo
    kinds = dataset_task_kinds(dataset)
    if kinds and getattr(visualizer, 'tasks', None) is None:
        # samples lacking a task still get its (empty) tile, so panels line up
        visualizer.tasks = list(kinds)

    if args.output_dir is not None:
        os.makedirs(args.output_dir, exist_ok=True)
    num = len(dataset) if args.num is None else min(args.num, len(dataset))
    progress = ProgressBar(num)
    for index in range(num):
        item = dataset[index]
        data_sample = item['data_samples']
        name = sample_name(index, data_sample)
        out_file = (
            osp.join(args.output_dir, f'{name}.png')
            if args.output_dir is not None
            else None
        )
        visualizer.add_datasample(
            name,
            item['inputs'],
            data_sample=data_sample,
            draw_gt=True,
            draw_pred=False,
            show=not args.not_show,
            wait_time=args.show_interval,
            out_file=out_file,
        )
        progress.update()


if __name__ == '__main__':
    main()
