# CTAL on NYUv2 with PCGrad on the backbone and neck (see README.md).
_base_ = ['../ctal/ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py']
model = dict(aggregator=dict(type='PCGrad'))
optim_wrapper = dict(type='JacobianOptimWrapper')
