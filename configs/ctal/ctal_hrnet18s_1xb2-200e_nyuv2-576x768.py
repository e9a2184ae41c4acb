# CTAL (HRNet-W18-small-v2) on NYUv2 at twice the MTAN resolution: 576x768 inputs, CTAL
# features 144x192 (N = 27,648 positions). The plain implementation would hold 3 + 1 affinity
# matrices of 27,648^2 floats per image (about 12 GB at batch 1); the factored one holds none,
# and activation checkpointing (with_cp) keeps only the inputs of the backbone + neck, the
# heads and CTAL's output convolutions (peak memory: docs/benchmarks.md). Batch 2, otherwise
# the reference's NYUv2 hyper-parameters.
_base_ = ['./ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py']

# The MTAN files are 288x384: images and training maps are upsampled x2 (depth values kept:
# same scene, more pixels). Test ground truth stays at 288x384: the annotations load after the
# resize and predictions are resized back to the original size before scoring.
train_pipeline = [
    dict(type='LoadMultiTaskImage'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='MultiTaskResize', scale_factor=2.0, depth_mode='keep'),
    dict(type='MultiTaskRandomFlip', prob=0.5),
    dict(type='PackMultiTaskInputs'),
]
test_pipeline = [
    dict(type='LoadMultiTaskImage'),
    dict(type='MultiTaskResize', scale_factor=2.0, depth_mode='keep'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    with_cp=True,
    decoder=dict(
        with_cp=True,
        affinity=dict(feature_size=(144, 192), implementation='factored'),
    ),
)
