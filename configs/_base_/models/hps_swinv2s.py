# Hard parameter sharing (HPS) with Swin-V2-S for PASCAL-Context (5 tasks, 512x512), as the CTAL
# transformer reference's baseline: the shared backbone's 768-ch stride-32 map, then per task a
# DeepLab-v3 head. The reference uses torchvision's swin_v2_s; mmpretrain's SwinTransformerV2
# (arch small, window 8) has 9,024 fewer parameters and otherwise the same layers.
# Task weights are the reference's baseline configs' (semseg 1, human parts 2, saliency 5,
# edge 50, normals 10); its CTAL config gives semseg 2 (ctal_swinv2s.py).
# Task order as the reference's (it orders PAP-Net's per-task mixing weights).
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
        pad_mode='centre',
        test_cfg=dict(size=(512, 512), pad_mode='centre'),
    ),
    backbone=dict(
        type='mmpretrain.SwinTransformerV2',
        arch='small',
        img_size=512,
        window_size=[8, 8, 8, 8],
        drop_path_rate=0.3,
        out_indices=(3,),
        # torchvision's swin_v2_s IMAGENET1K_V1 weights, as the reference: the one path of
        # every Swin config. Set it here or with --cfg-options
        # model.backbone.init_cfg.checkpoint=PATH; model.backbone.init_cfg=None trains from
        # scratch. A missing or partial file stops the run before the first step.
        init_cfg=dict(
            type='VerifiedPretrained',
            checkpoint='checkpoints/swin_v2_s_mmpretrain.pth',
            prefix='backbone.',
            source="It is torchvision's swin_v2_s IMAGENET1K_V1 file "
            '(https://download.pytorch.org/models/swin_v2_s-637d8ceb.pth) converted by '
            'python tools/model_converters/torchvision_swinv2_to_mmpretrain.py '
            'swin_v2_s-637d8ceb.pth checkpoints/swin_v2_s_mmpretrain.pth.',
        ),
    ),
    neck=None,
    decoder=dict(
        type='HPSDecoder',
        head=dict(type='DeepLabTaskHead', in_channels=768),
    ),
    tasks=dict(
        semseg=dict(
            kind='segmentation',
            channels=21,
            loss=dict(type='MTCrossEntropyLoss'),
            weight=1.0,
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
    # The reference's HPS loss counts every task twice (its initial and final predictions
    # are the same tensor): total = 2 * sum_t w_t L_t. stage_weights=dict(final=1.0)
    # halves the loss (same optimum; under Adam the balance against weight decay moves).
    loss_weighting=dict(
        type='StageScaledWeighting',
        stage_weights=dict(final=2.0),
        base=dict(type='FixedWeighting'),
    ),
)
