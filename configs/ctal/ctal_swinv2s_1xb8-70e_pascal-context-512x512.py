# CTAL (Swin-V2-S) on PASCAL-Context (PASCAL_MT: semseg 21, human parts 7, saliency, edges,
# normals; 512x512), with the reference's hyper-parameters: Adam 2e-5, weight decay 1e-5, cosine
# over 70 epochs, batch 8, task weights 2/2/5/50/10, seed 0.
_base_ = [
    '../_base_/models/ctal_swinv2s.py',
    '../_base_/datasets/pascal_context.py',
    '../_base_/schedules/adam_cosine_70e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # the dataset base config's data preprocessing and tasks (docs/add_new_task.md)
    data_preprocessor=_base_.data_preprocessor,
    # the reference's CTAL config weights semseg 2 (its baselines 1)
    tasks={
        **_base_.model_tasks,
        'semseg': dict(_base_.model_tasks['semseg'], weight=2.0),
    },
    # layers outside the backbone start from PyTorch's defaults, as in the reference
    # ('kaiming': mmcv ConvModule's init; docs/reproduce.md, difference 12)
    layer_init='reference',
)
