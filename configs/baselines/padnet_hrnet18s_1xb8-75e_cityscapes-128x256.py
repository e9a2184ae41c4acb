# PAD-Net with HRNet-W18-small-v2 on Cityscapes (MTAN protocol,
# 128x256), with the CTAL reference's hyper-parameters for this dataset (see ../ctal/README.md).
_base_ = [
    '../_base_/models/padnet_hrnet18s.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/schedules/adam_cosine_75e.py',
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
