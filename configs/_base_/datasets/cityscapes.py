# Cityscapes in MTAN's layout (128 x 256): semseg (19 classes; label_set="label_7" for the
# 7 categories) and depth. data_root holds {train,val}/{image,label_7,label_19,depth}/<i>.npy.
# As the CTAL CNN reference: horizontal flip only in training, raw [0, 1] images.
dataset_type = 'CityscapesMTDataset'
data_root = 'data/cityscapes'

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
# The task set, declared once (docs/add_new_task.md): `tasks` selects what the model predicts,
# the datasets load and the evaluators score; `task_specs` gives each task's kind, channels
# (semseg: the label set's class count; the config checks compare it with the dataset's),
# loss, weight and metric.
# The reference's heads and losses (semseg weight 1, depth weight 10) and its scoring (MTAN
# protocol): mIoU with absent classes excluded, depth abs/rel error.
num_semseg_classes = 19  # label_set='label_19'; 7 with 'label_7'
tasks = ('semseg', 'depth')
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
        weight=10.0,
        metric=dict(type='DepthMetric'),
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
        label_set='label_19',
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
        label_set='label_19',
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTaskMetric', task_metrics=task_metrics)
test_evaluator = val_evaluator
