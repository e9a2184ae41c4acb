# Synthetic indoor scenes (no download), 96 x 128: all six tasks are available
# (semseg, depth, normals, edge, saliency, human_parts); the default set is the NYUv2-like
# semseg / depth / normals. Training and held-out val scenes come from different seeds.
# Override e.g. --cfg-options train_dataloader.dataset.num_samples=1000
dataset_type = 'SyntheticScenesDataset'
synthetic_img_size = (96, 128)
synthetic_num_classes = 9  # floor, wall, ceiling + 6 object classes

# The task set, declared once (docs/add_new_task.md): `tasks` selects what the model predicts,
# the datasets load and the evaluators score (the NYUv2-like three by default; add e.g. 'edge'
# to train and score it too); `task_specs` gives every task the scenes have: kind, channels
# (segmentation: the scenes' class counts, compared with the dataset's by the config checks),
# loss, weight (1 each) and metric.
num_human_parts_classes = 4  # the PART_CLASSES of the scenes
tasks = ('semseg', 'depth', 'normals')
task_specs = dict(
    semseg=dict(
        kind='segmentation',
        channels=synthetic_num_classes,
        loss=dict(type='MTCrossEntropyLoss'),
        weight=1.0,
        metric=dict(
            type='SegmentationMetric', num_classes=synthetic_num_classes
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
        metric=dict(type='NormalsMetric'),
    ),
    edge=dict(
        kind='edge',
        channels=1,
        loss=dict(type='BalancedBCEEdgeLoss', pos_weight=0.95),
        weight=1.0,
        metric=dict(type='EdgeMetric'),
    ),
    saliency=dict(
        kind='saliency',
        channels=1,
        loss=dict(type='BalancedSaliencyLoss'),
        weight=1.0,
        metric=dict(type='SaliencyMetric'),
    ),
    human_parts=dict(
        kind='segmentation',
        channels=num_human_parts_classes,
        loss=dict(type='MTCrossEntropyLoss'),
        weight=1.0,
        metric=dict(
            type='SegmentationMetric', num_classes=num_human_parts_classes
        ),
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
    dict(type='LoadSyntheticScene'),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PackMultiTaskInputs'),
]
test_pipeline = [
    dict(type='LoadSyntheticScene'),
    dict(type='PackMultiTaskInputs'),
]
# test-time augmentation (tools/test.py --tta): each image as is and mirrored, averaged
tta_pipeline = [
    dict(type='LoadSyntheticScene'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='MultiTaskRandomFlip', prob=0.0),
                dict(type='MultiTaskRandomFlip', prob=1.0),
            ],
            [dict(type='PackMultiTaskInputs')],
        ],
    ),
]
# like the CNN reference on NYUv2: images scaled to [0, 1], no mean / std
data_preprocessor = dict(
    type='MultiTaskDataPreProcessor',
    mean=[0.0, 0.0, 0.0],
    std=[255.0, 255.0, 255.0],
    pad_val=0,
)
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        tasks=tasks,
        num_samples=320,
        img_size=synthetic_img_size,
        num_classes=synthetic_num_classes,
        seed=0,
        split='train',
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        tasks=tasks,
        num_samples=64,
        img_size=synthetic_img_size,
        num_classes=synthetic_num_classes,
        seed=1,
        split='val',
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiTaskMetric', task_metrics=task_metrics)
test_evaluator = val_evaluator
