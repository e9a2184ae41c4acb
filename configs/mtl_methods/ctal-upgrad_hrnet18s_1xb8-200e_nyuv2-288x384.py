# CTAL on NYUv2 with UPGrad on the backbone and neck (see README.md).
_base_ = ['../ctal/ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py']
model = dict(aggregator=dict(type='UPGrad'))
optim_wrapper = dict(type='JacobianOptimWrapper')
