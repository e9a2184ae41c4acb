# InvPT (ECCV 2022) with ViT-L/16 on NYUD-MT (semseg, depth, normals, edge), the official
# InvPT/configs/nyud/nyud_vitLp16.yml: training scale 448 x 576 (the position embeddings'
# grid, 28 x 36), batch 2, Adam lr 2e-5 / weight decay 1e-6, poly 0.9 over 40k iterations,
# loss weights 1 / 1 / 10 / 50 on the final and the intermediate predictions, edge pos_weight
# 0.95. Parameters: 402,092,888, as the official model (tests/test_models/test_invpt.py).
# Data: the ATRC / InvPT archive (425 x 560 images, padded centred to 448 x 576 as its
# PadImage); docs/reproduce.md lists what differs from the official recipe.
_base_ = [
    '../_base_/models/invpt_vitl16.py',
    '../_base_/datasets/nyud_mt.py',
    '../_base_/schedules/adam_poly_40k.py',
    '../_base_/default_runtime.py',
]
crop_size = (448, 576)
# InvPT's normals loss (ATRC's L1Loss): |normalised prediction - gt| summed over the three
# channels, averaged over valid pixels
normals_loss = dict(type='NormalsLoss', mode='l1')
model = dict(
    # the dataset base config's data preprocessing (padded to the training scale) and tasks
    data_preprocessor=dict(
        _base_.data_preprocessor,
        size=crop_size,
        test_cfg=dict(size=crop_size, pad_mode='centre'),
    ),
    tasks={
        **_base_.model_tasks,
        'normals': dict(_base_.model_tasks['normals'], loss=normals_loss),
    },
    backbone=dict(img_size=crop_size),
)
train_pipeline = [
    dict(type='LoadMultiTaskImage'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(
        type='MultiTaskRandomResize',
        ratio_range=(0.5, 2.0),
        depth_mode='divide',
    ),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='MultiTaskPhotoMetricDistortion'),
    dict(type='MultiTaskPad', size=crop_size, mode='centre'),
    dict(type='PackMultiTaskInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
# iteration-based logging and checkpoints (the schedule is by iteration)
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=1000),
)
