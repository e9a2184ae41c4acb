# The reference's NYUv2 schedule: Adam lr 1e-4, weight decay 1e-4, cosine annealing per
# epoch over 200 epochs.
max_epochs = 200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=1e-4),
)
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        by_epoch=True,
        begin=0,
        end=max_epochs,
    )
]
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10
)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
