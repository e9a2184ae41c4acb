# Single-task learning (STL) with HRNet-W18-small-v2: one HRNet-W18 and one HRNet head per task,
# trained together but sharing nothing (the reference point of delta_m). HPS with one backbone
# per task: only the model type differs.
_base_ = ['./hps_hrnet18s.py']
# The reference trains each STL network on its own unweighted loss (one optimiser per task);
# one Adam over the disjoint networks is the same update. loss_weighting=FixedWeighting
# applies the task weights instead.
model = dict(
    type='SingleTaskEncoderDecoder',
    loss_weighting=dict(_delete_=True, type='UnitWeighting'),
)
