# InvPT (ECCV 2022) on ViT-L/16, as the official InvPT/ code builds it from its ymls: the ViT's
# blocks 6, 12, 18 and its normed output (out_indices 0-based), drop-path 0.15, position
# embeddings for the training scale (the method config sets img_size to its crop size), the
# UP-Transformer decoder with embed_dim 512 + 64, and a 1x1 conv head per task. Intermediate
# predictions (stage `initial`) and final ones take each task's loss at the task's weight
# (the dataset base config's model_tasks: InvPT's loss_weights). BatchNorm: the official code
# uses SyncBatchNorm (set decoder.norm_cfg=dict(type='SyncBN') for several GPUs).
model = dict(
    type='MultiTaskEncoderDecoder',
    backbone=dict(
        type='PatchViT',
        arch='large',
        img_size=(448, 576),
        patch_size=16,
        out_indices=(5, 11, 17, 23),
        drop_path_rate=0.15,
        # timm's vit_large_patch16_384 ImageNet weights (augreg in21k -> in1k, the file the
        # official code loads): set the path here or with --cfg-options
        # model.backbone.init_cfg.checkpoint=PATH; model.backbone.init_cfg=None trains from
        # scratch. A missing or partial file stops the run before the first step.
        init_cfg=dict(
            type='VerifiedPretrained',
            checkpoint='checkpoints/vit_large_patch16_384_448x576.pth',
            prefix='backbone.',
            source="It is timm's vit_large_patch16_384.augreg_in21k_ft_in1k file "
            '(https://huggingface.co/timm/vit_large_patch16_384.augreg_in21k_ft_in1k) '
            'converted for the training scale by python '
            'tools/model_converters/timm_vit2mm.py model.safetensors '
            'checkpoints/vit_large_patch16_384_448x576.pth --img-size 448 576.',
        ),
    ),
    neck=None,
    decoder=dict(
        type='InvPTDecoder',
        in_channels=1024,
        embed_dims=512,
        pred_channels=64,
        num_heads=(2, 2, 2),
        kv_strides=(2, 4, 8),
        norm_cfg=dict(type='BN'),
    ),
)
