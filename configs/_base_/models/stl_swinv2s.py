# Single-task learning (STL) with Swin-V2-S on PASCAL-Context: one Swin-V2-S and one DeepLab-v3
# head per task, trained together but sharing nothing (the reference point of delta_m).
_base_ = ['./hps_swinv2s.py']
# The reference trains each STL network on its own unweighted loss (one optimiser per task);
# one Adam over the disjoint networks is the same update. loss_weighting=FixedWeighting
# applies the task weights instead.
model = dict(
    type='SingleTaskEncoderDecoder',
    loss_weighting=dict(_delete_=True, type='UnitWeighting'),
)
