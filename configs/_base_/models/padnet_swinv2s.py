# PAD-Net with Swin-V2-S on PASCAL-Context, as the CTAL transformer reference's baseline: per task
# an initial head on the 768-ch stride-32 map (two bottleneck blocks to 256 ch + 1x1 conv;
# supervised), multi-modal distillation between the tasks' 256-ch features, per task a DeepLab-v3
# head on 256 ch.
_base_ = ['./hps_swinv2s.py']
model = dict(
    decoder=dict(
        _delete_=True,
        type='PADNetDecoder',
        in_channels=768,
        channels=256,
        initial_head=dict(type='BottleneckTaskHead'),
        final_head=dict(type='DeepLabTaskHead'),
    ),
    # every stage once (the HPS base counts its one stage twice)
    loss_weighting=dict(_delete_=True, type='FixedWeighting'),
)
