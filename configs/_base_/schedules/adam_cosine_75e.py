# The reference's Cityscapes schedule: Adam lr 5e-4, weight decay 1e-4, cosine over 75 epochs.
_base_ = ['./adam_cosine_200e.py']
max_epochs = 75
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        by_epoch=True,
        begin=0,
        end=max_epochs,
    )
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
