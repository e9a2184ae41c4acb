"""Checkpoints: resume works with weights_only loading; foreign pickles are refused."""

import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from ctal_mm.utils import UnsafeCheckpointError, safe_torch_load


class _ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels, mode='tensor'):
        inputs, labels = torch.stack(inputs), torch.stack(labels)
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((out - labels) ** 2).mean())
        return out


class _ToyDataset(Dataset):
    metainfo = dict(classes=('a',))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = torch.tensor([float(i), 1.0])
        return dict(inputs=x, labels=x.sum(0, keepdim=True))


def _runner(work_dir, max_iters, resume=False):
    return Runner(
        model=_ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0,
        ),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        param_scheduler=dict(
            type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=10
        ),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=100),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1),
        ),
        resume=resume,
        randomness=dict(seed=0),
        default_scope='ctal_mm',
        experiment_name=f'toy_{max_iters}_{resume}',
    )


def test_resume_restores_iteration_and_optimizer(tmp_path):
    first = _runner(tmp_path, max_iters=2)
    first.train()
    ckpt = osp.join(tmp_path, 'iter_2.pth')
    assert osp.isfile(ckpt)
    saved = safe_torch_load(
        ckpt, map_location='cpu'
    )  # weights_only=True with mmengine's types
    assert saved['meta']['iter'] == 2
    saved_exp_avg = saved['optimizer']['state'][0]['exp_avg'].clone()

    second = _runner(tmp_path, max_iters=4, resume=True)
    second.train()
    assert second.iter == 4  # resumed at 2, trained 2 more
    # the optimizer state went on from the saved one: Adam's step counter is 4, not 2
    state = second.optim_wrapper.optimizer.state_dict()['state'][0]
    assert int(state['step']) == 4
    assert not torch.equal(state['exp_avg'], saved_exp_avg)
    # and the scheduler's position came back too
    assert second.param_schedulers[0].last_step == 4


class _Payload:
    """Unpickling this runs code: the attack a weights_only load must stop."""

    def __reduce__(self):
        return (open, (_Payload.marker, 'w'))


def test_foreign_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'payload_ran'
    _Payload.marker = str(marker)
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': _Payload()}, path)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        safe_torch_load(str(path))
    assert not marker.exists()
    # the same through mmengine's own loading path, which the Runner uses for --resume / load_from
    from mmengine.runner.checkpoint import _load_checkpoint

    with pytest.raises(UnsafeCheckpointError, match='arbitrary code'):
        _load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_plain_state_dict_loads(tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save({'w': torch.arange(3)}, path)
    assert torch.equal(safe_torch_load(str(path))['w'], torch.arange(3))


def test_missing_checkpoint_names_the_path(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint

    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        _load_checkpoint(str(tmp_path / 'nowhere.pth'))
