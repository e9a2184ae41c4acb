# The InvPT / TaskPrompter / MLoRE recipe: Adam lr 2e-5, weight decay 1e-6, 40k iterations,
# lr x (1 - iter / 40k) ^ 0.9 set at every iteration (their PolynomialLR), validation every
# 1000 iterations (their val_interval).
max_iters = 40000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=2e-5, weight_decay=1e-6),
)
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.0,
        by_epoch=False,
        begin=0,
        end=max_iters,
    )
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000
)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# Iteration-based logging and checkpoints: set by the experiment config (default_runtime.py
# defines log_processor and default_hooks, and bases may not both define a key):
# log_processor = dict(by_epoch=False); default_hooks = dict(logger=dict(log_metric_by_epoch=
# False), checkpoint=dict(by_epoch=False, interval=1000)).
