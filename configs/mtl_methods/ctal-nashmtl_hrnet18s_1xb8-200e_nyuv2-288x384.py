# CTAL on NYUv2 with Nash-MTL on the backbone and neck;
# needs cvxpy and ecos (requirements/optional.txt).
_base_ = ['../ctal/ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py']
model = dict(aggregator=dict(type='NashMTL'))
optim_wrapper = dict(type='JacobianOptimWrapper')
