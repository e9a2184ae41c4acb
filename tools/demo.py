"""The README's main job: train CTAL on the built-in synthetic scenes and show what it learnt.

    make demo            (or: python tools/demo.py [--config C] [--work-dir D] [--cfg-options ...])

1. evaluates the untrained model on the held-out synthetic split (the "before" numbers),
2. trains CTAL on CPU for a few minutes (progress and ETA in the log),
3. evaluates the trained model on the same split, writing one prediction panel per image,
4. prints a per-task table: metric, untrained, trained.
Everything lands in the work dir (default work_dirs/demo/).
"""

import argparse
import glob
import os
import os.path as osp
import time

from mmengine.config import Config
from mmengine.runner import Runner

from ctal_mm.engine.config_loading import add_cfg_options_argument, load_config
from ctal_mm.utils import register_all_modules

DEMO_CONFIG = 'configs/ctal/ctal_hrnet18s_1xb8-4e_synthetic-96x128.py'


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train and evaluate CTAL on synthetic scenes'
    )
    parser.add_argument(
        '--config', default=DEMO_CONFIG, help='config to demonstrate'
    )
    parser.add_argument(
        '--work-dir',
        default='work_dirs/demo',
        help='where everything is written',
    )
    add_cfg_options_argument(parser)
    return parser.parse_args()


def _runner(cfg: Config, work_dir: str, draw: bool, phase: str) -> Runner:
    cfg = cfg.copy()
    cfg.work_dir = work_dir
    # a visualizer is a global instance per name: one per phase, so that each phase's
    # scalars go to its own run directory even when two phases start in the same second
    cfg.visualizer = dict(cfg.visualizer, name=f'demo_{phase}_visualizer')
    if draw:
        cfg.default_hooks.visualization.draw = True
        cfg.default_hooks.visualization.show_dir = osp.join(work_dir, 'panels')
    return Runner.from_cfg(cfg)


def main():
    args = parse_args()
    register_all_modules(init_default_scope=False)
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    config = (
        args.config if osp.isabs(args.config) else osp.join(root, args.config)
    )
    cfg = load_config(config, args.cfg_options)
    work_dir = osp.abspath(args.work_dir)

    print(f'[demo] config {osp.relpath(config, root)}; work dir {work_dir}')
    print(
        '[demo] 1/3 evaluating the untrained model on the held-out split ...'
    )
    before = _runner(
        cfg, osp.join(work_dir, 'untrained'), draw=False, phase='untrained'
    ).test()

    print('[demo] 2/3 training (CPU) ...')
    start = time.time()
    trainer = _runner(cfg, work_dir, draw=False, phase='train')
    trainer.train()
    train_minutes = (time.time() - start) / 60

    print(
        '[demo] 3/3 evaluating the trained model, writing prediction panels ...'
    )
    tester_cfg = cfg.copy()
    tester_cfg.load_from = osp.join(work_dir, 'final.pth')
    trainer.save_checkpoint(
        work_dir, 'final.pth', save_optimizer=False, save_param_scheduler=False
    )
    after = _runner(tester_cfg, work_dir, draw=True, phase='trained').test()

    keys = sorted(set(before) | set(after))
    width = max(len(k) for k in keys)
    print(
        f'\n[demo] held-out synthetic split, {train_minutes:.1f} min of training on CPU'
    )
    print(f'{"metric":<{width}}  {"untrained":>10}  {"trained":>10}')
    for key in keys:
        b, a = before.get(key, float('nan')), after.get(key, float('nan'))
        print(f'{key:<{width}}  {b:>10.4f}  {a:>10.4f}')
    panels = sorted(
        glob.glob(
            osp.join(work_dir, '**', 'vis_image', '*.png'), recursive=True
        )
    )
    if panels:
        print(f'\n[demo] {len(panels)} prediction panels, e.g. {panels[0]}')
    print(
        f'[demo] checkpoint {osp.join(work_dir, "final.pth")}; logs under {work_dir}'
    )


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    main()
