# The reference's Cityscapes schedule for MTI-Net and M-CTAL (scheduler: cosine_wr): Adam lr
# 5e-4, weight decay 1e-4, cosine annealing with warm restarts, first period epochs // 3 = 25,
# each next period twice as long (25 + 50 = 75 epochs), stepped per epoch.
# The reference steps it at the end of epoch e with the value e + (n - 1) / n (n iterations per
# epoch), so its lr lags this schedule's by 1 / n epoch (under 0.3 % of an epoch on Cityscapes).
_base_ = ['./adam_cosine_75e.py']
param_scheduler = [
    dict(
        type='CosineRestartLR',
        periods=[25, 50],
        restart_weights=[1.0, 1.0],
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=75,
    )
]
