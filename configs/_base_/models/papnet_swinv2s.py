# PAP-Net with Swin-V2-S on PASCAL-Context, as the CTAL transformer reference's baseline: per task
# an initial head on the 768-ch stride-32 map (two bottleneck blocks to 256 ch + 1x1 conv;
# supervised), per task a 1x1 conv to 128 ch whose pixel affinities (16x16 positions) are mixed
# across tasks and through which the features diffuse (beta 0.05, one step, as the reference's
# config), per task a DeepLab-v3 head on 128 ch. reference_affinity=True is the reference's
# affinity normalisation (over pixels, by column sums); False normalises over channels as
# PAP-Net's paper (docs/baselines.md).
_base_ = ['./hps_swinv2s.py']
model = dict(
    decoder=dict(
        _delete_=True,
        type='PAPNetDecoder',
        in_channels=768,
        channels=256,
        affinity_channels=128,
        beta=0.05,
        num_iters=1,
        reference_affinity=True,
        initial_head=dict(type='BottleneckTaskHead'),
        final_head=dict(type='DeepLabTaskHead'),
    ),
    # every stage once (the HPS base counts its one stage twice)
    loss_weighting=dict(_delete_=True, type='FixedWeighting'),
)
