# NYUD-v2 in the multitask protocol of MTI-Net / ATRC / InvPT ("NYUD-MT"): 795 train / 654 val
# images, semseg (40 classes), depth (metres), normals, edge. data_root is the extracted
# archive, MTI-Net's (NYUD_MT/) or ATRC/InvPT's (NYUDv2/): the layout is detected
# (docs/dataset_prepare.md). Augmentation as ATRC / InvPT / TaskPrompter: random scale
# 0.5-2.0, crop (cat_max_ratio 0.75), flip, photometric distortion, pad (centred, as their
# PadImage); test images are not resized, the data preprocessor pads them centred.
# crop_size: CTAL's fusion conv is built for one feature size, so every input must be exactly
# this size. 480 x 640 holds both archives' test images (MTI-Net's are NYUv2's 480 x 640
# frames; ATRC/InvPT's are padded to 425 x 560 / 448 x 576 by their loaders) and is a
# multiple of HRNet's stride 32. The ImageNet mean / std of the three projects.
dataset_type = 'NYUDMTDataset'
data_root = 'data/NYUD_MT'
crop_size = (480, 640)

# The task set, declared once (docs/add_new_task.md): `tasks` selects what the model predicts,
# the datasets load and the evaluators score; `task_specs` gives each task's kind, channels
# (semseg: the dataset's 40 classes; the config checks compare it with the dataset's), loss,
# weight and metric.
# The protocol's heads and losses, shared by the CTAL / HPS / STL configs: loss weights
# 1 / 1 / 10 / 50 and edge positive weight 0.95 as the MTI-Net and InvPT / TaskPrompter NYUD
# configs (ATRC's NYUD class uses 0.8); L1 on normalised normals and on valid depth, as all
# three. Its scoring: semseg mIoU over the 40 classes, depth RMSE in metres over valid pixels
# of the whole split, mean normal angle (2 atan2 form, as InvPT's meter), edges as ODS-F of the
# BSDS matching at maximum distance 0.011 x image diagonal (the SEISM maxDist the ATRC and
# InvPT READMEs give for NYUD-v2), with the NMS of SEISM's pipeline as for PASCAL, at the
# benchmark's 99 thresholds.
num_semseg_classes = 40
tasks = ('semseg', 'depth', 'normals', 'edge')
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
        loss=dict(type='NormalsLoss', mode='l1_elementwise'),
        weight=10.0,
        metric=dict(type='NormalsMetric', angle='atan2'),
    ),
    edge=dict(
        kind='edge',
        channels=1,
        loss=dict(type='BalancedBCEEdgeLoss', pos_weight=0.95),
        weight=50.0,
        metric=dict(
            type='EdgeMetric', max_dist=0.011, nms=True, num_thresholds=99
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
    # depth / scale: an image enlarged s times looks like a camera s times closer (ATRC too)
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
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        tasks=tasks,
        data_root=data_root,
        split='train',
        layout='auto',
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
        layout='auto',
        test_mode=True,
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
# Validation during training scores edges at 33 thresholds (ODS-F within 0.05 of the full
# protocol on the synthetic scenes, docs/benchmarks.md#edge-evaluation); tools/test.py
# (test_evaluator) keeps the benchmark's 99.
# delta_m needs your single-task numbers on this protocol, e.g. from the STL config:
# val_evaluator = dict(stl_baselines=dict(semseg=dict(mIoU=...), depth=dict(rmse=...),
#                                         normals=dict(mean=...), edge=dict(odsF=...)))
# (and the same for test_evaluator).
val_evaluator = dict(
    type='MultiTaskMetric',
    task_metrics={
        **task_metrics,
        'edge': dict(task_metrics['edge'], num_thresholds=33),
    },
)
test_evaluator = dict(type='MultiTaskMetric', task_metrics=task_metrics)
