# M-CTAL (multi-scale CTAL) with HRNet-W18-small-v2, as the CTAL reference: MTI-Net's per-scale
# initial predictions and feature propagation (supervised as scale_0..scale_3, weight 1/4 each),
# per task an HRNet fuse of its four maps (270 ch at stride 4), the CTAL affinity module
# (270 -> 128 ch, upsampled to stride 2), per task a final head (two bottleneck blocks at 128 ch
# + 1x1 conv). The affinity fusion conv is sized by feature_size = input size / 4.
_base_ = ['./ctal_hrnet18s.py']
model = dict(
    neck=None,
    decoder=dict(
        _delete_=True,
        type='MultiScaleCTALDecoder',
        in_channels=[18, 36, 72, 144],
        scale_fusion=dict(type='HRNetFuseNeck'),
        affinity=dict(
            in_channels=270,
            channels=128,
            feature_size=(72, 96),  # input size / 4 (NYUv2 288x384)
            gamma=0.05,
            # 'plain' materialises every N x N matrix, as the reference; 'factored' computes
            # the same function without any (memory linear in N, faster when 9 x tasks x
            # channels < N, as for NYUv2); measured in docs/benchmarks.md
            implementation='factored',
        ),
        final_head=dict(type='BottleneckTaskHead', channels=128),
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
