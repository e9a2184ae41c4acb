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

# The task set, declared once (docs/add_new_task.md): `tasks` selects what the model predicts,
# the datasets load and the evaluators score, and orders loading and scoring; `task_specs`
# gives each task's kind, channels (segmentation: the dataset's 21 / 7 classes, compared with
# the dataset's by the config checks), loss, weight
# and metric, in the model's task order (the reference's: it orders PAP-Net's per-task mixing
# weights and CTAL's fusion input).
# The transformer reference's baseline weights (semseg 1, human parts 2, saliency 5, edge 50,
# normals 10; its CTAL config gives semseg 2, ctal_swinv2s_1xb8-70e_pascal-context-512x512.py)
# and its scoring with the field's edge metric added: absent classes count 0, human parts only
# on images with people, saliency max F (without the reference's double sigmoid: set
# reference_double_sigmoid=True to compare with numbers published with it), normals mean
# angle, edges ODS-F at 0.0075 at the benchmark's 99 thresholds, and the reference's BCE proxy.
num_semseg_classes = 21
num_human_parts_classes = 7
tasks = ('semseg', 'human_parts', 'saliency', 'normals', 'edge')
task_specs = dict(
    semseg=dict(
        kind='segmentation',
        channels=num_semseg_classes,
        loss=dict(type='MTCrossEntropyLoss'),
        weight=1.0,
        metric=dict(
            type='SegmentationMetric',
            num_classes=num_semseg_classes,
            absent_classes='zero',
        ),
    ),
    normals=dict(
        kind='normals',
        channels=3,
        loss=dict(type='NormalsLoss', mode='l1'),
        weight=10.0,
        metric=dict(type='NormalsMetric', angle='atan2'),
    ),
    saliency=dict(
        kind='saliency',
        channels=2,
        loss=dict(type='BalancedSaliencyLoss'),
        weight=5.0,
        metric=dict(type='SaliencyMetric'),
    ),
    edge=dict(
        kind='edge',
        channels=1,
        loss=dict(type='BalancedBCEEdgeLoss', pos_weight=0.95),
        weight=50.0,
        metric=dict(
            type='EdgeMetric', max_dist=0.0075, nms=True, num_thresholds=99
        ),
    ),
    human_parts=dict(
        kind='segmentation',
        channels=num_human_parts_classes,
        loss=dict(type='MTCrossEntropyLoss'),
        weight=2.0,
        metric=dict(
            type='SegmentationMetric',
            num_classes=num_human_parts_classes,
            absent_classes='zero',
            only_images_with_labels=True,
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
# Validation during training scores edges at 33 thresholds (ODS-F within 0.05 of the full
# protocol on the synthetic scenes, docs/benchmarks.md#edge-evaluation); tools/test.py
# (test_evaluator) keeps the benchmark's 99.
val_evaluator = dict(
    type='MultiTaskMetric',
    task_metrics={
        **task_metrics,
        'edge': dict(task_metrics['edge'], num_thresholds=33),
    },
)
test_evaluator = dict(type='MultiTaskMetric', task_metrics=task_metrics)
