# Hard parameter sharing (HPS) with HRNet-W18-small-v2, as the CTAL reference's baseline: the
# shared backbone, then per task an HRNet head (fuse the four maps at stride 4, 1x1 conv + BN +
# ReLU, 1x1 conv to the task's channels). Backbone as CTAL's; tasks and data preprocessing
# from the dataset base config.
_base_ = ['./ctal_hrnet18s.py']
model = dict(
    neck=None,
    decoder=dict(
        _delete_=True,
        type='HPSDecoder',
        head=dict(type='HRNetTaskHead', in_channels=[18, 36, 72, 144]),
    ),
    # The reference's HPS loss counts every task twice (its initial and final predictions
    # are the same tensor): total = 2 * sum_t w_t L_t. stage_weights=dict(final=1.0)
    # halves the loss (same optimum; under Adam the balance against weight decay moves).
    loss_weighting=dict(
        _delete_=True,
        type='StageScaledWeighting',
        stage_weights=dict(final=2.0),
        base=dict(type='FixedWeighting'),
    ),
)
