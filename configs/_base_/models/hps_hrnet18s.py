# Hard parameter sharing (HPS) with HRNet-W18-small-v2, as the CTAL reference's baseline: the
# shared backbone, then per task an HRNet head (fuse the four maps at stride 4, 1x1 conv + BN +
# ReLU, 1x1 conv to the task's channels). Tasks, data preprocessing and backbone as CTAL's
# (NYUv2 by default; experiment configs set the dataset's tasks).
_base_ = ['./ctal_hrnet18s.py']
model = dict(
    neck=None,
    decoder=dict(
        _delete_=True,
        type='HPSDecoder',
        head=dict(type='HRNetTaskHead', in_channels=[18, 36, 72, 144]),
    ),
)
