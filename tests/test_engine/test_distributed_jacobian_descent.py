"""Jacobian descent (model.aggregator) on two CPU processes equals one process on the union
batch: the per-task gradients of the shared parameters are averaged before aggregating."""

import pytest
import torch
from reliability_helpers import state_dict, train, write_config
from test_distributed import FLOAT64, NO_FLIP, _losses


@pytest.mark.parametrize('method', ['UPGrad', 'PCGrad'])
def test_two_processes_aggregate_the_union_batch_jacobian(tmp_path, method):
    common = dict(
        max_epochs=1,
        num_samples=8,
        train_dataset=NO_FLIP,
        model=f"{FLOAT64}, aggregator=dict(type='{method}')",
        extra="sync_bn = 'torch'\n"
        # SGD: the step is proportional to the gradient (Adam's first
        # steps hardly depend on its size)
        "optim_wrapper = dict(type='JacobianOptimWrapper', optimizer=dict("
        "_delete_=True, type='SGD', lr=0.05))",
    )
    one = write_config(tmp_path / 'one.py', batch_size=4, **common)
    two = write_config(tmp_path / 'two.py', batch_size=2, **common)
    proc = train(one, tmp_path / 'one')
    assert proc.returncode == 0, proc.stdout[-3000:]
    proc = train(two, tmp_path / 'two', nproc=2)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert 'CPUDistributedDataParallel' in proc.stdout

    single = _losses(tmp_path / 'one', 0)
    mean = (_losses(tmp_path / 'two', 0) + _losses(tmp_path / 'two', 1)) / 2
    assert len(single) == len(mean) == 2
    torch.testing.assert_close(mean, single, rtol=1e-9, atol=0)
    a = state_dict(tmp_path / 'one' / 'epoch_1.pth')
    b = state_dict(tmp_path / 'two' / 'epoch_1.pth')
    assert a.keys() == b.keys()
    for key in a:  # in float64
        torch.testing.assert_close(
            a[key], b[key], rtol=1e-6, atol=1e-8, msg=key
        )
