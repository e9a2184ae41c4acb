# Hard parameter sharing (HPS) with Swin-V2-S for PASCAL-Context (5 tasks, 512x512), as the CTAL
# transformer reference's baseline: the shared backbone's 768-ch stride-32 map, then per task a
# DeepLab-v3 head. The reference uses torchvision's swin_v2_s; mmpretrain's SwinTransformerV2
# (arch small, window 8) has 9,024 fewer parameters and otherwise the same layers.
# The tasks (`model_tasks`: the reference's baseline weights, in its task order) and the data
# preprocessing come from the dataset base config, configs/_base_/datasets/pascal_context.py,
# through the experiment config.
model = dict(
    type='MultiTaskEncoderDecoder',
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
    # The reference's HPS loss counts every task twice (its initial and final predictions
    # are the same tensor): total = 2 * sum_t w_t L_t. stage_weights=dict(final=1.0)
    # halves the loss (same optimum; under Adam the balance against weight decay moves).
    loss_weighting=dict(
        type='StageScaledWeighting',
        stage_weights=dict(final=2.0),
        base=dict(type='FixedWeighting'),
    ),
)
