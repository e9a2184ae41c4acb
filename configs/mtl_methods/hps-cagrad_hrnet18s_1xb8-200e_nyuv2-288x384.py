# HPS on NYUv2 with CAGrad (c=0.4) on the backbone and neck;
# needs cvxpy (requirements/optional.txt).
_base_ = ['../baselines/hps_hrnet18s_1xb8-200e_nyuv2-288x384.py']
model = dict(aggregator=dict(type='CAGrad', c=0.4))
optim_wrapper = dict(type='JacobianOptimWrapper')
