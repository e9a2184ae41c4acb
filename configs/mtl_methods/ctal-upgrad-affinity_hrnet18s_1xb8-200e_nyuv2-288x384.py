# CTAL on NYUv2 with UPGrad on the backbone, the neck and CTAL's cross-task
# affinity module (decoder.affinity), which every task's loss reaches.
_base_ = ['./ctal-upgrad_hrnet18s_1xb8-200e_nyuv2-288x384.py']
model = dict(shared_modules=['backbone', 'neck', 'decoder.affinity'])
