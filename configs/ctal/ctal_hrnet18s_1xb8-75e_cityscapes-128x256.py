# CTAL (HRNet-W18-small-v2) on Cityscapes, MTAN protocol (19 classes, 128x256, semseg/depth),
# with the reference's hyper-parameters: Adam 5e-4, weight decay 1e-4, cosine over 75 epochs,
# batch 8, flip augmentation, task weights semseg 1 / depth 10, seed 0.
_base_ = [
    '../_base_/models/ctal_hrnet18s.py',
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
    decoder=dict(affinity=dict(feature_size=(32, 64))),  # 128x256 / 4
)
