# CTAL with HRNet-W18-small-v2, as the reference's CNN tree, sized for NYUv2 (MTAN protocol):
# 288x384 inputs -> CTAL features 72x96 (N = 6912). The tasks (`model_tasks`) and the data
# preprocessing (`data_preprocessor`) come from the dataset base config the experiment config
# inherits with this one; it gives them to the model (docs/add_new_task.md).
# The backbone's BN momentum is the reference's HRNet constant (0.01); the fuse neck and the
# heads keep PyTorch's 0.1, as there.
norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
model = dict(
    type='MultiTaskEncoderDecoder',
    backbone=dict(
        type='HRNet',
        norm_cfg=norm_cfg,
        norm_eval=False,
        extra=dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block='BOTTLENECK',
                num_blocks=(2,),
                num_channels=(64,),
            ),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block='BASIC',
                num_blocks=(2, 2),
                num_channels=(18, 36),
            ),
            stage3=dict(
                num_modules=3,
                num_branches=3,
                block='BASIC',
                num_blocks=(2, 2, 2),
                num_channels=(18, 36, 72),
            ),
            stage4=dict(
                num_modules=2,
                num_branches=4,
                block='BASIC',
                num_blocks=(2, 2, 2, 2),
                num_channels=(18, 36, 72, 144),
            ),
        ),
        # ImageNet weights, as the reference (which refuses to start without them): the one
        # path of every HRNet config. Set it here or with --cfg-options
        # model.backbone.init_cfg.checkpoint=PATH; model.backbone.init_cfg=None trains from
        # scratch. A missing or partial file stops the run before the first step.
        init_cfg=dict(
            type='VerifiedPretrained',
            checkpoint='checkpoints/hrnet_w18_small_v2_mmseg.pth',
            prefix='backbone.',
            source="It is timm's hrnet_w18_small_v2 ImageNet weights (Hugging Face: "
            'timm/hrnet_w18_small_v2.ms_in1k) or the official hrnet_w18_small_model_v2.pth, '
            'converted by python tools/model_converters/hrnet2mmseg.py SRC '
            'checkpoints/hrnet_w18_small_v2_mmseg.pth.',
        ),
    ),
    neck=dict(type='HRNetFuseNeck', in_channels=[18, 36, 72, 144]),
    decoder=dict(
        type='CTALDecoder',
        in_channels=270,
        initial_head=dict(type='BottleneckTaskHead', channels=256),
        final_head=dict(type='BottleneckTaskHead', channels=128),
        affinity=dict(
            in_channels=256,
            channels=128,
            feature_size=(
                72,
                96,
            ),  # input size / 4: the fusion conv is sized by it
            gamma=0.05,
            # 'plain' materialises every N x N matrix, as the reference; 'factored' computes
            # the same function without any (memory linear in N, faster when 9 x tasks x
            # channels < N, as for NYUv2); measured in docs/benchmarks.md
            implementation='factored',
        ),
    ),
    loss_weighting=dict(type='FixedWeighting'),
)
