# CTAL with Swin-V2-S, as the reference's transformer tree, for PASCAL-Context (PASCAL_MT,
# 5 tasks, 512x512): the backbone's 768-ch stride-32 map (16x16, N = 256), initial bottleneck
# heads with deep supervision, the affinity module (conv_in with BN + ReLU in this tree),
# upsampled once to 32x32, then a DeepLab-v3 head per task.
# The reference uses torchvision's swin_v2_s; mmpretrain's SwinTransformerV2 (arch small,
# window 8) has 9,024 fewer parameters and otherwise the same layers (docs/models.md), so this
# model has 62,170,110 parameters against the reference's 62,179,134.
# Task order as the reference's.
model = dict(
    type='MultiTaskEncoderDecoder',
    # the dataset config's `data_preprocessor` is wired in by each experiment config:
    # model = dict(data_preprocessor={{_base_.data_preprocessor}})
    data_preprocessor=dict(
        type='MultiTaskDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        size=(512, 512),
        pad_val=0,
        test_cfg=dict(size=(512, 512), pad_mode='centre'),
    ),
    backbone=dict(
        type='mmpretrain.SwinTransformerV2',
        arch='small',
        img_size=512,
        window_size=[8, 8, 8, 8],
        drop_path_rate=0.3,
        out_indices=(3,),
        # ImageNet-1k weights (an mmpretrain classifier checkpoint):
        # init_cfg=dict(type='Pretrained', checkpoint='PATH', prefix='backbone.')
    ),
    neck=None,
    decoder=dict(
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
            # the same function without any (memory linear in N, faster when 9 x tasks x
            # channels < N, as for NYUv2); measured in docs/benchmarks.md
            implementation='plain',
        ),
    ),
    tasks=dict(
        semseg=dict(
            kind='segmentation',
            channels=21,
            loss=dict(type='MTCrossEntropyLoss'),
            weight=2.0,
        ),
        normals=dict(
            kind='normals',
            channels=3,
            loss=dict(type='NormalsLoss', mode='l1'),
            weight=10.0,
        ),
        saliency=dict(
            kind='saliency',
            channels=2,
            loss=dict(type='BalancedSaliencyLoss'),
            weight=5.0,
        ),
        edge=dict(
            kind='edge',
            channels=1,
            loss=dict(type='BalancedBCEEdgeLoss', pos_weight=0.95),
            weight=50.0,
        ),
        human_parts=dict(
            kind='segmentation',
            channels=7,
            loss=dict(type='MTCrossEntropyLoss'),
            weight=2.0,
        ),
    ),
    loss_weighting=dict(type='FixedWeighting'),
)
