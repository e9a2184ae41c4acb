# PASCAL-Context in the PASCAL_MT layout (MTI-Net / ASTMT): semseg (21), human_parts (7),
# saliency, normals, edge. As the CTAL transformer reference: train = random scale 0.5-2.0,
# crop 512 x 512 (cat_max_ratio 0.75), flip, photometric distortion; test = no resize; ImageNet
# mean / std. Train and test images are padded to 512 x 512 centred, after normalisation, with 0
# (the data preprocessor; task maps with their ignore values), as the reference's PadImage.
# Also as the reference (docs/reproduce.md, differences 14-16): the random scale resizes the
# normals by nearest neighbour (normals_interpolation='bilinear' blends and renormalises them);
# a training crop whose human-parts map keeps no part pixel is ignored whole
# (MultiTaskIgnoreEmptyLabels, mode='full_image' keeps only the whole-image decision); the
# normals are used as stored (normals_gt='unit' rescales them to unit length).
dataset_type = 'PascalContextMTDataset'
data_root = 'data/PASCAL_MT'
crop_size = (512, 512)

train_pipeline = [
    dict(type='LoadMultiTaskImage'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(
        type='MultiTaskRandomResize',
        ratio_range=(0.5, 2.0),
        normals_interpolation='nearest',
    ),
    dict(type='MultiTaskRandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(
        type='MultiTaskIgnoreEmptyLabels',
        tasks=('human_parts',),
        mode='after_crop',
    ),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='MultiTaskPhotoMetricDistortion'),
    dict(type='PackMultiTaskInputs'),
]
test_pipeline = [
    dict(type='LoadMultiTaskImage'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]
data_preprocessor = dict(
    type='MultiTaskDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    size=crop_size,
    pad_val=0,
    pad_mode='centre',
    test_cfg=dict(size=crop_size, pad_mode='centre'),
)
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    # the reference drops the last incomplete batch of every epoch
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        tasks=('semseg', 'human_parts', 'saliency', 'normals', 'edge'),
        normals_gt='stored',
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        tasks=('semseg', 'human_parts', 'saliency', 'normals', 'edge'),
        normals_gt='stored',
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
