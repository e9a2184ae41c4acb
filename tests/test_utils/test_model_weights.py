import pytest
import torch
from torch import nn

from ctal_mm.utils import (
    CheckpointMismatchError,
    check_state_dict,
    load_model_weights,
)


def _net(out=3):
    return nn.Sequential(
        nn.Conv2d(2, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, out, 1)
    )


def test_strict_load_copies_every_weight(tmp_path):
    src, dst = _net(), _net()
    path = str(tmp_path / 'ok.pth')
    torch.save({'state_dict': src.state_dict(), 'meta': {}}, path)
    ckpt = load_model_weights(dst, path)
    assert 'meta' in ckpt
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k


def test_another_model_is_refused_naming_keys_and_nothing_is_copied(tmp_path):
    src, dst = _net(out=5), _net()
    sd = src.state_dict()
    sd['extra.weight'] = torch.zeros(1)
    del sd['1.running_var']
    path = str(tmp_path / 'other.pth')
    torch.save({'state_dict': sd}, path)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_model_weights(dst, path)
    msg = str(err.value)
    assert path in msg
    assert (
        '2.weight: (5, 4, 1, 1) in the file, (3, 4, 1, 1) in the model' in msg
    )
    assert '1.running_var' in msg and 'extra.weight' in msg
    assert 'another model or config' in msg
    for k, v in dst.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_non_strict_loads_what_fits(tmp_path):
    src, dst = _net(out=5), _net()
    path = str(tmp_path / 'other.pth')
    torch.save(src.state_dict(), path)  # a bare state dict is accepted too
    load_model_weights(dst, path, strict=False)
    assert torch.equal(dst[0].weight, src[0].weight)
    assert not torch.equal(dst[2].bias[:3], src[2].bias[:3])


def test_long_lists_are_cut():
    expected = {f'k{i}': torch.zeros(1) for i in range(10)}
    with pytest.raises(
        CheckpointMismatchError, match=r'10 keys missing .*and 6 more'
    ):
        check_state_dict(expected, {}, 'x.pth')
