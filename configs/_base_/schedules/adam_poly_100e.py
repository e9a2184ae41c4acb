# MTI-Net's NYUD schedule (HRNet-18 configs of Multi-Task-Learning-PyTorch): Adam lr 1e-4,
# weight decay 1e-4, 100 epochs, lr x (1 - epoch / 100) ^ 0.9 set at each epoch.
max_epochs = 100
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, weight_decay=1e-4),
)
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
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
