"""Tiny CTAL and HPS configs (the synthetic demo config shrunk to 32 x 32) for the API tests."""

import os.path as osp

from mmengine.config import Config

from ctal_mm.engine.config_loading import load_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CTAL_CONFIG = osp.join(
    ROOT, 'configs/ctal/ctal_hrnet18s_1xb8-4e_synthetic-96x128.py'
)
SIZE = (32, 48)
TASKS = ('semseg', 'depth', 'normals', 'saliency', 'edge')


def tiny_config(model: str = 'ctal', implementation: str = 'plain') -> Config:
    """CTAL (``implementation`` of the affinity) or HPS on 32 x 48 synthetic scenes with
    five tasks, one of each kind."""
    cfg = load_config(CTAL_CONFIG)
    tasks = dict(
        semseg=dict(kind='segmentation', channels=9),
        depth=dict(kind='depth', channels=1),
        normals=dict(kind='normals', channels=3),
        saliency=dict(kind='saliency', channels=1),
        edge=dict(kind='edge', channels=1),
    )
    cfg.tasks = TASKS
    cfg.model.tasks = tasks
    # HRNet-W18-small's layout with a quarter of its blocks and channels
    channels = (8, 16, 32, 64)
    extra = cfg.model.backbone.extra
    extra.stage1.update(num_blocks=(1,), num_channels=(16,))
    for i, stage in enumerate(('stage2', 'stage3', 'stage4')):
        extra[stage].update(
            num_modules=1,
            num_blocks=(1,) * (i + 2),
            num_channels=channels[: i + 2],
        )
    cfg.model.neck.in_channels = list(channels)
    if model == 'ctal':
        cfg.model.decoder = dict(
            type='CTALDecoder',
            in_channels=sum(channels),
            initial_head=dict(type='BottleneckTaskHead', channels=16),
            final_head=dict(type='BottleneckTaskHead', channels=16),
            affinity=dict(
                in_channels=16,
                channels=8,
                feature_size=(SIZE[0] // 4, SIZE[1] // 4),
                gamma=0.05,
                implementation=implementation,
            ),
        )
    elif model == 'hps':
        cfg.model.neck = None
        cfg.model.decoder = dict(
            type='HPSDecoder',
            head=dict(type='HRNetTaskHead', in_channels=list(channels)),
        )
    else:
        raise ValueError(model)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        dataset.img_size = SIZE
        dataset.num_samples = 4
        dataset.tasks = TASKS
        cfg[loader].batch_size = 2
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    return cfg
