# NYUv2 in MTAN's layout (13 classes, 288 x 384): semseg, depth, normals.
# data_root holds {train,val}/{image,label,depth,normal}/<i>.npy (docs/dataset_prepare.md).
# As the CTAL CNN reference: horizontal flip only in training, no augmentation in val/test
# (the reference also flips val images at random, a bug not copied here), raw [0, 1] images.
# Normals as stored, a vector summing to 0 invalid, as the reference (normals_gt='unit'
# rescales them to unit length; docs/reproduce.md, difference 15).
dataset_type = 'NYUv2Dataset'
data_root = 'data/nyuv2'

# The task set, declared once (docs/add_new_task.md): `tasks` selects what the model predicts,
# the datasets load and the evaluators score; `task_specs` gives each task's kind, output
# channels (semseg: the dataset's class count; the config checks compare it with the
# dataset's), loss, weight and metric.
# The reference's heads and losses: weights 1 / 1 / 1, cosine normals loss. Its scoring (MTAN
# protocol): mIoU with absent classes excluded, depth abs/rel error, normal angles (acos of
# the dot product).
num_semseg_classes = 13  # the MTAN 13-class labels
tasks = ('semseg', 'depth', 'normals')
task_specs = dict(
    semseg=dict(
        kind='segmentation',
        channels=num_semseg_classes,
        loss=dict(type='MTCrossEntropyLoss'),
        weight=1.0,
        metric=dict(
            type='SegmentationMetric',
            num_classes=num_semseg_classes,
            absent_classes='exclude',
        ),
    ),
    depth=dict(
        kind='depth',
        channels=1,
        loss=dict(type='MaskedL1DepthLoss'),
        weight=1.0,
        metric=dict(type='DepthMetric'),
    ),
    normals=dict(
        kind='normals',
        channels=3,
        loss=dict(type='NormalsLoss', mode='cosine'),
        weight=1.0,
        metric=dict(type='NormalsMetric', angle='acos'),
    ),
)

# What the model, the datasets and the evaluators are given, derived here from the two above
# (the model's tasks in task_specs' order: heads, losses and CTAL's fusion input follow it,
# so a checkpoint depends on it; loading and scoring in the selection's order). A child
# config that changes the selection writes these again (docs/add_new_task.md).
model_tasks = {
    task: {key: value for key, value in spec.items() if key != 'metric'}
    for task, spec in task_specs.items()
    if task in tasks
}
task_metrics = {task: task_specs[task]['metric'] for task in tasks}

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
        tasks=tasks,
        data_root=data_root,
        split='train',
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
        tasks=tasks,
        data_root=data_root,
        split='val',
        normals_gt='stored',
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
# stl_baselines=dict(semseg=dict(mIoU=...), depth=dict(abs_err=...), normals=dict(mean=...))
# with your single-task numbers to get delta_m (and save the best checkpoint by it).
val_evaluator = dict(type='MultiTaskMetric', task_metrics=task_metrics)
test_evaluator = val_evaluator
