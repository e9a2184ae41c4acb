"""Two gloo processes, each with half of the split, give the numbers of one process (the
edge metric included: its counts are computed in each rank's workers and gathered)."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ctal_mm.structures import MultiTaskDataSample

TASKS = dict(
    semseg=dict(type='SegmentationMetric', num_classes=5),
    depth=dict(type='DepthMetric'),
    normals=dict(type='NormalsMetric'),
    saliency=dict(type='SaliencyMetric'),
    # counts in 2 worker processes per rank; only the counts are gathered
    edge=dict(type='EdgeMetric', num_thresholds=9, nproc=2),
)


def make_split(n=6, size=(16, 20)):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    data = []
    for _ in range(n):
        s = MultiTaskDataSample()
        seg = torch.as_tensor(rng.integers(0, 5, (1, *size)))
        s.set_gt('semseg', seg)
        s.set_pred('semseg', torch.as_tensor(rng.integers(0, 5, (1, *size))))
        depth = torch.as_tensor(
            rng.uniform(0.5, 3, (1, *size)), dtype=torch.float32
        )
        s.set_gt('depth', depth)
        s.set_pred('depth', depth + 0.1 * torch.randn_like(depth))
        normals = torch.nn.functional.normalize(torch.randn(3, *size), dim=0)
        s.set_gt('normals', normals)
        s.set_pred(
            'normals', torch.nn.functional.normalize(normals + 0.3, dim=0)
        )
        s.set_gt('saliency', torch.as_tensor(rng.integers(0, 2, (1, *size))))
        s.set_pred('saliency', torch.rand(1, *size))
        edge = torch.as_tensor(rng.random((1, *size)) < 0.2)
        s.set_gt('edge', edge.long())
        s.set_pred('edge', (edge * 0.6 + 0.4 * torch.rand(1, *size)))
        data.append(s.to_dict())
    return data


def run_metric(data, size):
    from ctal_mm.evaluation import MultiTaskMetric

    metric = MultiTaskMetric(task_metrics=TASKS)
    metric.process(None, data)
    return metric.evaluate(
        size=size
    )  # size: the whole split, as the ValLoop passes it


def _worker(rank, port, queue):
    os.environ.update(
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE='2',
    )
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=2)
    from ctal_mm.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    data = make_split()
    # DefaultSampler's split without shuffling: rank r gets samples r, r + 2, ...
    result = run_metric(data[rank::2], size=len(data))
    if rank == 0:
        queue.put(result)
    dist.barrier()
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_processes_give_the_numbers_of_one():
    from ctal_mm.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    data = make_split()
    single = run_metric(data, size=len(data))
    ctx = mp.get_context('spawn')
    queue = ctx.SimpleQueue()
    mp.start_processes(
        _worker,
        args=(_free_port(), queue),
        nprocs=2,
        join=True,
        start_method='spawn',
    )
    double = queue.get()
    assert set(single) == set(double)
    for key in single:
        assert double[key] == pytest.approx(single[key], rel=1e-9), key
