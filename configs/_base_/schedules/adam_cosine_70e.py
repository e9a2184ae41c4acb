# The reference's PASCAL-Context schedule: Adam lr 2e-5, weight decay 1e-5, cosine over
# 70 epochs, no gradient clipping. The reference's yml files set grad_clip_param (max_norm 10;
# 2 for PAP-Net) but its code never reads it, so its runs do not clip. To clip as those files
# intend: --cfg-options optim_wrapper.clip_grad.max_norm=10 (the first steps' gradient norm
# is about 33, so it is active).
_base_ = ['./adam_cosine_200e.py']
max_epochs = 70
optim_wrapper = dict(
    optimizer=dict(lr=2e-5, weight_decay=1e-5),
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
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
