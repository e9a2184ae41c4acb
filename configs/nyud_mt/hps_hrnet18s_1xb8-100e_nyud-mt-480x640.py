# hard parameter sharing with HRNet-W18-small-v2 on NYUD-MT (4 tasks, 480x640), with the same
# data, losses and schedule as ctal_hrnet18s_1xb8-100e_nyud-mt-480x640.py.
_base_ = [
    '../_base_/models/hps_hrnet18s.py',
    '../_base_/datasets/nyud_mt.py',
    '../_base_/schedules/adam_poly_100e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # the dataset base config's data preprocessing and tasks (docs/add_new_task.md)
    data_preprocessor=_base_.data_preprocessor,
    tasks=_base_.model_tasks,
)
