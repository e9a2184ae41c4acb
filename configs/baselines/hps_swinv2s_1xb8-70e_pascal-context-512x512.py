# hard parameter sharing with Swin-V2-S on PASCAL-Context (PASCAL_MT, 5 tasks, 512x512), with the
# CTAL reference's hyper-parameters for this dataset (see ../ctal/README.md).
_base_ = [
    '../_base_/models/hps_swinv2s.py',
    '../_base_/datasets/pascal_context.py',
    '../_base_/schedules/adam_cosine_70e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # the dataset base config's data preprocessing and tasks (docs/add_new_task.md)
    data_preprocessor=_base_.data_preprocessor,
    tasks=_base_.model_tasks,
    # layers outside the backbone start from PyTorch's defaults, as in the reference
    # ('kaiming': mmcv ConvModule's init; docs/reproduce.md, difference 12)
    layer_init='reference',
)
