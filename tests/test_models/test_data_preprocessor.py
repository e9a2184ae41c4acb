"""MultiTaskDataPreProcessor: normalisation, padding per kind, test-time padding_size."""

import pytest
import torch

from ctal_mm.models.data_preprocessor import MultiTaskDataPreProcessor
from ctal_mm.registry import MODELS
from ctal_mm.structures import MultiTaskDataSample

KINDS = dict(
    semseg='segmentation', depth='depth', normals='normals', edge='edge'
)


def make_batch(shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in shapes:
        inputs.append(
            torch.randint(
                0, 256, (3, h, w), generator=generator, dtype=torch.uint8
            )
        )
        sample = MultiTaskDataSample(
            metainfo=dict(
                task_kinds=dict(KINDS), img_shape=(h, w), ori_shape=(h, w)
            )
        )
        sample.set_gt(
            'semseg', torch.randint(0, 5, (1, h, w), generator=generator)
        )
        sample.set_gt(
            'edge', torch.randint(0, 2, (1, h, w), generator=generator)
        )
        sample.set_gt('depth', torch.rand(1, h, w, generator=generator) + 1)
        normals = torch.randn(3, h, w, generator=generator)
        sample.set_gt('normals', normals / normals.norm(dim=0, keepdim=True))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_built_from_the_registry_and_normalises():
    pre = MODELS.build(
        dict(
            type='MultiTaskDataPreProcessor',
            mean=[0, 0, 0],
            std=[255, 255, 255],
        )
    )
    assert isinstance(pre, MultiTaskDataPreProcessor)
    batch = make_batch([(4, 5), (4, 5)])
    raw = torch.stack(batch['inputs']).float()
    out = pre(batch, training=False)
    assert out['inputs'].dtype == torch.float32
    torch.testing.assert_close(out['inputs'], raw / 255)
    pre = MultiTaskDataPreProcessor(mean=[1.0, 2.0, 3.0], std=[2.0, 4.0, 8.0])
    out = pre(make_batch([(4, 5)]), training=False)['inputs']
    mean = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)
    std = torch.tensor([2.0, 4.0, 8.0]).view(3, 1, 1)
    torch.testing.assert_close(out[0], (raw[0] - mean) / std)
    out = MultiTaskDataPreProcessor()(make_batch([(4, 5)]), training=False)
    torch.testing.assert_close(out['inputs'][0], raw[0])


def test_training_pads_inputs_and_every_task_with_its_ignore_value():
    pre = MultiTaskDataPreProcessor(
        size_divisor=4, pad_val=-1, mixed_sizes='allow'
    )
    batch = make_batch([(5, 6), (3, 7)])
    originals = [
        {t: s.gt(t).clone() for t in s.gt_tasks} for s in batch['data_samples']
    ]
    out = pre(batch, training=True)
    assert out['inputs'].shape == (2, 3, 8, 8)
    for index, ((h, w), sample) in enumerate(
        zip([(5, 6), (3, 7)], out['data_samples'])
    ):
        assert (out['inputs'][index, :, h:] == -1).all()
        assert (out['inputs'][index, :, :, w:] == -1).all()
        assert sample.metainfo['batch_input_shape'] == (8, 8)
        assert sample.metainfo['pad_shape'] == (8, 8)
        assert sample.metainfo['padding_size'] == (0, 8 - w, 0, 8 - h)
        assert sample.metainfo['img_shape'] == (h, w)
        for task, ignore in (
            ('semseg', 255),
            ('edge', 255),
            ('depth', 0),
            ('normals', 0),
        ):
            gt = sample.gt(task)
            assert gt.shape[-2:] == (8, 8)
            assert gt.dtype == originals[index][task].dtype
            torch.testing.assert_close(gt[:, :h, :w], originals[index][task])
            assert (gt[:, h:] == ignore).all() and (
                gt[:, :, w:] == ignore
            ).all()


def test_size_and_centre_padding():
    pre = MultiTaskDataPreProcessor(size=(8, 9), pad_mode='centre')
    out = pre(make_batch([(5, 6)]), training=True)
    sample = out['data_samples'][0]
    assert out['inputs'].shape == (1, 3, 8, 9)
    assert sample.metainfo['padding_size'] == (1, 2, 1, 2)
    semseg = sample.gt('semseg')[0]
    assert (semseg[0] == 255).all() and (semseg[:, 0] == 255).all()
    assert (semseg[1:6, 1:7] != 255).all()
    # an image larger than size grows the batch instead of being cropped
    pre.mixed_sizes = 'allow'
    out = pre(make_batch([(5, 6), (10, 4)]), training=True)
    assert out['inputs'].shape == (2, 3, 10, 9)


def test_test_time_pads_only_inputs_and_records_padding_size():
    pre = MultiTaskDataPreProcessor(
        mean=[0, 0, 0],
        std=[255, 255, 255],
        size=(16, 16),
        test_cfg=dict(size=(10, 12), pad_mode='centre'),
    )
    batch = make_batch([(5, 6), (7, 7)])
    batch['data_samples'][1].set_metainfo(dict(padding_size=(1, 0, 0, 1)))
    originals = [s.gt('semseg').clone() for s in batch['data_samples']]
    out = pre(batch, training=False)
    assert out['inputs'].shape == (2, 3, 10, 12)
    first, second = out['data_samples']
    assert first.metainfo['padding_size'] == (3, 3, 2, 3)
    assert second.metainfo['padding_size'] == (1 + 2, 3, 1, 1 + 2)
    assert first.metainfo['batch_input_shape'] == (10, 12)
    torch.testing.assert_close(first.gt('semseg'), originals[0])  # untouched
    left, right, top, bottom = first.metainfo['padding_size']
    torch.testing.assert_close(
        out['inputs'][0, :, top : 10 - bottom, left : 12 - right],
        batch['inputs'][0].float() / 255,
    )
    # no test_cfg: the training padding applies
    out = MultiTaskDataPreProcessor(size_divisor=8)(make_batch([(5, 6)]))
    assert out['inputs'].shape == (1, 3, 8, 8)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match='give both'):
        MultiTaskDataPreProcessor(mean=[0, 0, 0])
    with pytest.raises(ValueError, match="pad_mode='middle'"):
        MultiTaskDataPreProcessor(pad_mode='middle')
    with pytest.raises(KeyError, match='pad_val'):
        MultiTaskDataPreProcessor(test_cfg=dict(pad_val=3))
    with pytest.raises(ValueError, match='contains 0'):
        MultiTaskDataPreProcessor(mean=[0], std=[0])
    batch = make_batch([(4, 4)])
    sample = batch['data_samples'][0]
    sample.set_gt('depth', torch.ones(1, 3, 4))
    with pytest.raises(
        ValueError, match=r'gt_depth is \(3, 4\) but the image is \(4, 4\)'
    ):
        MultiTaskDataPreProcessor()(batch, training=True)
