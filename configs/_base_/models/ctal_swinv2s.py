# CTAL with Swin-V2-S, as the reference's transformer tree, for PASCAL-Context (PASCAL_MT,
# 5 tasks, 512x512): the backbone's 768-ch stride-32 map (16x16, N = 256), initial bottleneck
# heads with deep supervision, the affinity module (conv_in with BN + ReLU in this tree),
# upsampled once to 32x32, then a DeepLab-v3 head per task.
# The reference uses torchvision's swin_v2_s; mmpretrain's SwinTransformerV2 (arch small,
# window 8) has 9,024 fewer parameters and otherwise the same layers (docs/models.md), so this
# model has 62,170,110 parameters against the reference's 62,179,134.
# Backbone as the Swin baselines'; tasks and data preprocessing from the dataset base config.
# The reference's CTAL config weights semseg 2 (its baselines 1): the experiment config sets
# it in model.tasks.
_base_ = ['./hps_swinv2s.py']
model = dict(
    decoder=dict(
        _delete_=True,
        type='CTALDecoder',
        in_channels=768,
        initial_head=dict(type='BottleneckTaskHead', channels=256),
        final_head=dict(type='DeepLabTaskHead', channels=256),
        affinity=dict(
            in_channels=256,
            channels=128,
            feature_size=(16, 16),  # 512 / 32: the fusion conv is sized by it
            gamma=0.05,
            conv_in_norm=True,
            # 'plain' materialises every N x N matrix, as the reference; 'factored' computes
            # the same function without any, but here N = 256 is small and 'plain' is the
            # cheaper (docs/benchmarks.md)
            implementation='plain',
        ),
    ),
    # every stage once (the HPS base counts its one stage twice)
    loss_weighting=dict(_delete_=True, type='FixedWeighting'),
)
