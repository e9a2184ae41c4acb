# Iteration-based variant: the 40k schedule over 20k iterations.
_base_ = ['./adam_cosine_40k.py']
max_iters = 20000
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters,
        by_epoch=False,
        begin=0,
        end=max_iters,
    )
]
train_cfg = dict(max_iters=max_iters, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))
