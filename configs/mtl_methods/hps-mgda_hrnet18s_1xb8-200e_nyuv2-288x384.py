# HPS on NYUv2 with MGDA on the backbone and neck (see README.md).
_base_ = ['../baselines/hps_hrnet18s_1xb8-200e_nyuv2-288x384.py']
model = dict(aggregator=dict(type='MGDA'))
optim_wrapper = dict(type='JacobianOptimWrapper')
