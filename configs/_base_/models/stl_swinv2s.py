# Single-task learning (STL) with Swin-V2-S on PASCAL-Context: one Swin-V2-S and one DeepLab-v3
# head per task, trained together but sharing nothing (the reference point of delta_m).
_base_ = ['./hps_swinv2s.py']
model = dict(type='SingleTaskEncoderDecoder')
