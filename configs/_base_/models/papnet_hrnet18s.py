# PAP-Net with HRNet-W18-small-v2, as the CTAL reference's baseline: fuse neck, per task an
# initial head (two bottleneck blocks to 256 ch + 1x1 conv; supervised), per task a 1x1 conv to
# 128 ch whose pixel affinities are mixed across tasks (learned softmax weights) and through which
# the features diffuse (beta 0.05, one step, as the reference's NYUv2 and Cityscapes papnet.yml),
# per task a final head (two bottleneck blocks at 128 ch + 1x1 conv).
# reference_affinity=True is the reference's affinity normalisation (over pixels, by column
# sums); False normalises over channels as PAP-Net's paper (docs/baselines.md).
_base_ = ['./ctal_hrnet18s.py']
model = dict(
    decoder=dict(
        _delete_=True,
        type='PAPNetDecoder',
        in_channels=270,
        channels=256,
        affinity_channels=128,
        beta=0.05,
        num_iters=1,
        reference_affinity=True,
        initial_head=dict(type='BottleneckTaskHead'),
        final_head=dict(type='BottleneckTaskHead'),
    ),
)
