# InvPT (ECCV 2022) with ViT-L/16 on PASCAL-Context (semseg, human parts, saliency, normals,
# edge), the official InvPT/configs/pascal/pascal_vitLp16.yml: training scale 512 x 512
# (position-embedding grid 32 x 32), batch 2, Adam lr 2e-5 / weight decay 1e-6, poly 0.9 over
# 40k iterations, loss weights 1 / 2 / 5 / 10 / 50 (the dataset base config's) on the final
# and the intermediate predictions, edge pos_weight 0.95. Parameters: 422,929,810, as the
# official model (tests/test_models/test_invpt.py). docs/reproduce.md lists what differs
# from the official recipe.
_base_ = [
    '../_base_/models/invpt_vitl16.py',
    '../_base_/datasets/pascal_context.py',
    '../_base_/schedules/adam_poly_40k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # the dataset base config's data preprocessing and tasks (docs/add_new_task.md)
    data_preprocessor=_base_.data_preprocessor,
    tasks=_base_.model_tasks,
    # the official task order (the dataset's task_specs follow the CTAL reference's)
    decoder=dict(
        task_order=('semseg', 'human_parts', 'saliency', 'normals', 'edge')
    ),
    backbone=dict(
        img_size=(512, 512),
        init_cfg=dict(
            checkpoint='checkpoints/vit_large_patch16_384_512x512.pth',
            source="It is timm's vit_large_patch16_384.augreg_in21k_ft_in1k file "
            '(https://huggingface.co/timm/vit_large_patch16_384.augreg_in21k_ft_in1k) '
            'converted for the training scale by python '
            'tools/model_converters/timm_vit2mm.py model.safetensors '
            'checkpoints/vit_large_patch16_384_512x512.pth --img-size 512 512.',
        ),
    ),
)
train_dataloader = dict(batch_size=2)
# iteration-based logging and checkpoints (the schedule is by iteration)
log_processor = dict(by_epoch=False)
default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=1000),
)
