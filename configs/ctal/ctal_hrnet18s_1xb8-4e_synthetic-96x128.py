# The README's demo: CTAL (HRNet-W18-small-v2) on the built-in synthetic scenes, sized to train
# on a 2-core CPU in a few minutes (4 epochs of 320 scenes, batch 8: 160 iterations).
# semseg (9 classes: the dataset's num_classes) + depth + normals at 96x128 -> CTAL features
# 24x32 (N = 768).
_base_ = [
    '../_base_/models/ctal_hrnet18s.py',
    '../_base_/datasets/synthetic.py',
    '../_base_/schedules/adam_cosine_200e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # the dataset base config's data preprocessing and tasks (docs/add_new_task.md)
    data_preprocessor=_base_.data_preprocessor,
    tasks=_base_.model_tasks,
    # the demo trains from scratch: no ImageNet file needed. BN momentum 0.1, not the
    # reference's 0.01: in 160 steps the running statistics that evaluation uses would barely
    # leave their start (measured with this config: mIoU 16.5 with 0.01, 43.6 with 0.1)
    backbone=dict(init_cfg=None, norm_cfg=dict(momentum=0.1)),
    # N = 768 positions < 9 x 3 tasks x 128 channels: the plain affinity is the cheaper here
    decoder=dict(affinity=dict(feature_size=(24, 32), implementation='plain')),
)
max_epochs = 4
# a higher learning rate than the reference's 1e-4: the demo has minutes, not 200 epochs
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        by_epoch=True,
        begin=0,
        end=max_epochs,
    )
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, save_best='auto'),
    visualization=dict(interval=0),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(vis_backends=vis_backends)
