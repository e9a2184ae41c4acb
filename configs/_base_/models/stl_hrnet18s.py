# Single-task learning (STL) with HRNet-W18-small-v2: one HRNet-W18 and one HRNet head per task,
# trained together but sharing nothing (the reference point of delta_m). HPS with one backbone
# per task: only the model type differs.
_base_ = ['./hps_hrnet18s.py']
model = dict(type='SingleTaskEncoderDecoder')
