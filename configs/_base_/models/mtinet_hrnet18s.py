# MTI-Net with HRNet-W18-small-v2, as the CTAL reference's baseline: no fuse neck; per scale and
# task two basic blocks + 1x1 conv (initial predictions, supervised as scale_0..scale_3 with
# weight 1/4 each: the reference averages them), feature propagation between scales,
# multi-modal distillation at every scale, per task an HRNet head over its four maps (final).
_base_ = ['./ctal_hrnet18s.py']
model = dict(
    neck=None,
    decoder=dict(
        _delete_=True,
        type='MTINetDecoder',
        in_channels=[18, 36, 72, 144],
        head=dict(type='HRNetTaskHead'),
    ),
    loss_weighting=dict(
        _delete_=True,
        type='StageScaledWeighting',
        stage_weights=dict(
            scale_0=0.25, scale_1=0.25, scale_2=0.25, scale_3=0.25
        ),
        base=dict(type='FixedWeighting'),
    ),
)
