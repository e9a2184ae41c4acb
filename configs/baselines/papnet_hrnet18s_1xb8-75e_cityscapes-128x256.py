# PAP-Net with HRNet-W18-small-v2 on Cityscapes (MTAN protocol,
# 128x256), with the CTAL reference's hyper-parameters for this dataset (see ../ctal/README.md).
_base_ = [
    '../_base_/models/papnet_hrnet18s.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/evaluators/cityscapes.py',
    '../_base_/schedules/adam_cosine_75e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor={{_base_.data_preprocessor}},
    tasks=dict(
        _delete_=True,
        semseg=dict(
            kind='segmentation',
            channels=19,
            loss=dict(type='MTCrossEntropyLoss'),
            weight=1.0,
        ),
        depth=dict(
            kind='depth', channels=1, loss=dict(type='MaskedL1DepthLoss'), weight=10.0
        ),
    ),
)
