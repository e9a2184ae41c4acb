# CTAL (HRNet-W18-small-v2) on NYUD-MT (40-class semseg, depth, normals, edges; the protocol of
# MTI-Net / ATRC / InvPT), with MTI-Net's HRNet-18 NYUD recipe: Adam 1e-4, weight decay 1e-4,
# poly over 100 epochs, batch 8, task weights 1/1/10/50. Inputs are 480x640 (crop / pad), so
# CTAL's features are 120x160 (N = 19,200): the factored affinity holds no N x N matrix
# (the plain one would hold 4 T of them, 1.5 GB each).
_base_ = [
    '../_base_/models/ctal_hrnet18s.py',
    '../_base_/datasets/nyud_mt.py',
    '../_base_/schedules/adam_poly_100e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # the dataset base config's data preprocessing and tasks (docs/add_new_task.md)
    data_preprocessor=_base_.data_preprocessor,
    tasks=_base_.model_tasks,
    decoder=dict(
        affinity=dict(feature_size=(120, 160), implementation='factored')
    ),
)
