# PAD-Net with HRNet-W18-small-v2, as the CTAL reference's baseline: fuse neck (270 ch at
# stride 4), per task an initial head (two bottleneck blocks to 256 ch + 1x1 conv; supervised),
# multi-modal distillation between the tasks' 256-ch features, per task a final head (two
# bottleneck blocks at 256 ch + 1x1 conv).
_base_ = ['./ctal_hrnet18s.py']
model = dict(
    decoder=dict(
        _delete_=True,
        type='PADNetDecoder',
        in_channels=270,
        channels=256,
        initial_head=dict(type='BottleneckTaskHead'),
        final_head=dict(type='BottleneckTaskHead'),
    ),
)
