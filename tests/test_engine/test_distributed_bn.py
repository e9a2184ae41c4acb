"""Synchronised BatchNorm on CPU (gloo): two processes with half the batch each compute what
one process computes with the whole batch; tools/train.py selects it on CPU."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import Config
from torch import nn

from ctal_mm.engine.distributed import (
    GlooSyncBatchNorm,
    convert_to_gloo_sync_bn,
)
from ctal_mm.engine.launch import setup_cpu_distributed


class Branches(nn.Module):
    """Two BatchNorm'd branches summed, then a BatchNorm with running statistics."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()
        )
        self.b = nn.Sequential(
            nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True)
        )
        self.c = nn.Sequential(
            nn.Conv2d(4, 4, 1),
            nn.BatchNorm2d(4, momentum=None),
            nn.Conv2d(4, 2, 1),
        )

    def forward(self, x):
        return self.c(self.a(x) + 2 * self.b(x))


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 6, 6, generator=g, dtype=torch.float64)
    return x, torch.randn(4, 2, 4, 4, generator=g, dtype=torch.float64)


def _worker(rank, port, out):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    model = convert_to_gloo_sync_bn(Branches().double(), dist.new_group())
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=None)
    x, y = _data()
    for _ in range(2):  # two steps: running statistics and momentum=None
        loss = ((ddp(x[rank::2]) - y[rank::2]) ** 2).mean()
        ddp.zero_grad()
        loss.backward()
    if rank == 0:
        torch.save(
            dict(
                grads={n: p.grad for n, p in model.named_parameters()},
                state=model.state_dict(),
            ),
            out,
        )
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_processes_compute_the_whole_batch(tmp_path):
    out = str(tmp_path / 'rank0.pt')
    mp.spawn(_worker, args=(_free_port(), out), nprocs=2)
    result = torch.load(out)
    model = Branches().double()
    x, y = _data()
    for _ in range(2):
        loss = ((model(x) - y) ** 2).mean()
        model.zero_grad()
        loss.backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(result['grads'][name], param.grad, msg=name)
    for name, value in model.state_dict().items():  # running statistics
        torch.testing.assert_close(result['state'][name], value, msg=name)


def test_conversion_shares_parameters_and_buffers():
    model = Branches()
    bn = model.a[1]
    converted = convert_to_gloo_sync_bn(model)
    assert isinstance(converted.a[1], GlooSyncBatchNorm)
    assert converted.a[1].weight is bn.weight
    assert converted.a[1].running_mean is bn.running_mean
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(converted.eval()(x), Branches().eval()(x))


@pytest.mark.parametrize(
    'requested',
    [
        dict(sync_bn='torch'),
        dict(model=dict(backbone=dict(norm_cfg=dict(type='SyncBN')))),
        dict(),
    ],
)
def test_cpu_launch_selects_the_synchronising_wrapper(requested, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip('the CPU set-up only')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(_free_port()))
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    cfg = Config(
        dict(
            launcher='pytorch',
            env_cfg=dict(dist_cfg=dict(timeout=30)),
            **requested,
        )
    )
    try:
        setup_cpu_distributed(cfg)
    finally:
        dist.destroy_process_group()
    wrapper = cfg.model_wrapper_cfg
    assert wrapper.device_ids is None
    if requested:
        assert wrapper.type == 'CPUDistributedDataParallel' and wrapper.sync_bn
        assert cfg.get('sync_bn') is None  # not torch's GPU-only conversion
    else:
        assert wrapper.type == 'MMDistributedDataParallel'
