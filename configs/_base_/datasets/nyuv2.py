# NYUv2 in MTAN's layout (13 classes, 288 x 384): semseg, depth, normals.
# data_root holds {train,val}/{image,label,depth,normal}/<i>.npy (docs/dataset_prepare.md).
# As the CTAL CNN reference: horizontal flip only in training, no augmentation in val/test
# (the reference also flips val images at random, a bug not copied here), raw [0, 1] images.
# Normals as stored, a vector summing to 0 invalid, as the reference (normals_gt='unit'
# rescales them to unit length; docs/reproduce.md, difference 15).
dataset_type = 'NYUv2Dataset'
data_root = 'data/nyuv2'

train_pipeline = [
    dict(type='LoadMultiTaskImage'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PackMultiTaskInputs'),
]
test_pipeline = [
    dict(type='LoadMultiTaskImage'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]
# /255: the network sees the [0, 1] values of the .npy files, as in the reference
data_preprocessor = dict(
    type='MultiTaskDataPreProcessor',
    mean=[0.0, 0.0, 0.0],
    std=[255.0, 255.0, 255.0],
    pad_val=0,
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
        tasks=('semseg', 'depth', 'normals'),
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
        tasks=('semseg', 'depth', 'normals'),
        normals_gt='stored',
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
