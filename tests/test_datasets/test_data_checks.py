"""Data mistakes that used to train silently: ids that differ only as written, repeated ids
in a split file, the same image in training and validation, a batch of mixed image sizes,
tasks without a labelled pixel, depths far beyond the sensor's range."""

import logging
import os
import os.path as osp
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_layouts import make_nyud_mt, write_mtan
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger

from ctal_mm.datasets import (
    CityscapesMTDataset,
    DataFileError,
    NYUDMTDataset,
    NYUv2Dataset,
)
from ctal_mm.datasets.split_checks import split_overlap
from ctal_mm.engine.config_checks import _warn_split_overlap
from ctal_mm.models.data_preprocessor import MultiTaskDataPreProcessor
from ctal_mm.registry import MODELS
from ctal_mm.testing import base_model_config, random_multitask_samples
from ctal_mm.utils import register_all_modules

LOAD = [
    dict(type='LoadMultiTaskImage'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]
NYU_FOLDERS = ('image', 'label', 'depth', 'normal')


def _nyuv2(tmp_path, num=3, size=(8, 12)):
    root = str(tmp_path / 'nyuv2')
    write_mtan(root, 'train', NYU_FOLDERS, num, size, 13)
    return root


# ----------------------------------------------------------------- ids as written


def test_ids_that_are_one_number_written_twice_are_refused(tmp_path):
    root = _nyuv2(tmp_path)
    image = osp.join(root, 'train', 'image')
    os.rename(osp.join(image, '2.npy'), osp.join(image, '01.npy'))
    # image/ has 0, 1, 01: one sample would have been dropped
    with pytest.raises(
        DataFileError, match=r'image: 01\.npy and 1\.npy are both sample 1'
    ):
        NYUv2Dataset(data_root=root, pipeline=LOAD)


def test_ids_are_matched_across_folders_as_written(tmp_path):
    root = _nyuv2(tmp_path)
    image = osp.join(root, 'train', 'image')
    # image 01.npy, depth 1.npy: not the same sample (before: silently paired)
    os.rename(osp.join(image, '1.npy'), osp.join(image, '01.npy'))
    with pytest.raises(
        DataFileError, match=r'missing here: 01\.npy; without an image: 1\.npy'
    ):
        NYUv2Dataset(data_root=root, pipeline=LOAD)


def test_ids_keep_numeric_order(tmp_path):
    root = _nyuv2(tmp_path, num=12)
    dataset = NYUv2Dataset(data_root=root, pipeline=LOAD, tasks=('depth',))
    names = [
        osp.basename(dataset.get_data_info(i)['img_path'])
        for i in range(len(dataset))
    ]
    assert names == [f'{i}.npy' for i in range(12)]


# ----------------------------------------------------------------- split files


def test_an_id_listed_twice_in_a_split_file_is_refused(tmp_path):
    root = str(tmp_path / 'NYUD_MT')
    make_nyud_mt(root)
    split = osp.join(root, 'gt_sets', 'train.txt')
    with open(split, 'a') as f:
        f.write('0003\n')
    with pytest.raises(
        DataFileError,
        match=r'train\.txt: lists 1 id\(s\) more than once: '
        r"'0003' on lines 1, 3",
    ):
        NYUDMTDataset(data_root=root, pipeline=LOAD)


class _Loader:
    def __init__(self, dataset):
        self.dataset = dataset


class _Runner:
    def __init__(self):
        self.logger = MMLogger.get_instance('ctal_mm_data_checks')


def test_the_same_image_in_train_and_val_is_reported(tmp_path, caplog):
    root = str(tmp_path / 'NYUD_MT')
    make_nyud_mt(root)  # train 0003, 0007; val 0007, 0012
    train = NYUDMTDataset(data_root=root, split='train', pipeline=LOAD)
    val = NYUDMTDataset(data_root=root, split='val', pipeline=LOAD)
    shared = split_overlap(train, val)
    assert [osp.basename(p) for p in shared] == ['0007.jpg']

    runner = _Runner()
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    runner.logger.addHandler(handler)
    try:
        loaders = dict(
            train_dataloader=_Loader(train), val_dataloader=_Loader(val)
        )
        _warn_split_overlap(runner, loaders)
    finally:
        runner.logger.removeHandler(handler)
    (message,) = messages
    assert '1 image(s) are in both the training' in message
    assert "split 'train'" in message and "split 'val'" in message
    assert '0007.jpg' in message

    # MTAN keeps each split in its own folder: the same number is another image
    nyuv2 = str(tmp_path / 'nyuv2')
    write_mtan(nyuv2, 'train', NYU_FOLDERS, 2, (8, 12), 13)
    write_mtan(nyuv2, 'val', NYU_FOLDERS, 2, (8, 12), 13)
    assert not split_overlap(
        NYUv2Dataset(data_root=nyuv2, split='train', pipeline=LOAD),
        NYUv2Dataset(data_root=nyuv2, split='val', pipeline=LOAD),
    )


# ----------------------------------------------------------------- mixed sizes


def test_a_batch_of_mixed_sizes_names_the_files(tmp_path):
    root = _nyuv2(tmp_path)
    # one sample of another size, consistent in all its files
    write_mtan(
        str(tmp_path / 'odd'), 'train', NYU_FOLDERS, 1, (10, 10), 13, seed=3
    )
    for folder in NYU_FOLDERS:
        os.replace(
            tmp_path / 'odd' / 'train' / folder / '0.npy',
            Path(root) / 'train' / folder / '1.npy',
        )
    dataset = NYUv2Dataset(data_root=root, pipeline=LOAD)
    batch = pseudo_collate([dataset[0], dataset[1], dataset[2]])
    pre = MultiTaskDataPreProcessor(mean=[0] * 3, std=[1] * 3)
    with pytest.raises(ValueError) as error:
        pre(batch, training=True)
    message = str(error.value)
    odd = osp.join(root, 'train', 'image', '1.npy')
    assert f'10x10: {odd}' in message
    assert '8x12: ' in message and '0.npy' in message
    assert 'Resize' in message
    with pytest.raises(ValueError, match='10x10'):
        pre(batch, training=False)
    # padded to one fixed size, the batch shape no longer depends on the batch
    fixed = MultiTaskDataPreProcessor(size=(10, 12))
    assert fixed(batch, training=True)['inputs'].shape == (3, 3, 10, 12)
    warn = MultiTaskDataPreProcessor(mixed_sizes='warn')
    assert warn(batch, training=True)['inputs'].shape == (3, 3, 10, 12)


# ----------------------------------------------------------------- unlabelled batches


def test_a_task_without_labelled_pixels_is_counted_and_warned(caplog):
    cfg = base_model_config(
        Path(__file__).parents[2]
        / 'configs'
        / '_base_'
        / 'models'
        / 'hps_hrnet18s.py',
        Path(__file__).parents[2] / 'configs/_base_/datasets/nyuv2.py',
    )
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    size = (32, 32)
    inputs = [torch.rand(3, *size) * 255 for _ in range(2)]
    samples = random_multitask_samples(model.tasks, size)
    for i, sample in enumerate(samples):
        sample.set_metainfo(dict(img_path=f'img_{i}.npy'))
        sample.set_gt('depth', torch.zeros_like(sample.gt('depth')))
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        for _ in range(2):
            data = model.data_preprocessor(
                dict(inputs=inputs, data_samples=samples), True
            )
            losses = model(**data, mode='loss')
    finally:
        logger.removeHandler(handler)
    assert float(losses['final.depth.loss']) == 0
    assert model.unlabelled_batches == {'depth': 2}
    warned = [m for m in messages if 'no pixel of this batch' in m]
    assert len(warned) == 1, messages
    assert "Task 'depth'" in warned[0] and 'img_0.npy, img_1.npy' in warned[0]


# ----------------------------------------------------------------- max_depth


@pytest.mark.parametrize(
    'dataset_type, folders, default',
    [
        (NYUv2Dataset, NYU_FOLDERS, 20),
        (CityscapesMTDataset, ('image', 'label_19', 'depth'), 1000),
    ],
)
def test_depths_far_beyond_the_range_are_refused(
    tmp_path, dataset_type, folders, default
):
    root = str(tmp_path / 'data')
    write_mtan(root, 'train', folders, 2, (8, 12), 19)
    depth = osp.join(root, 'train', 'depth', '1.npy')
    np.save(depth, np.load(depth) * 1e30)

    def load(**kwargs):
        dataset = dataset_type(
            data_root=root, pipeline=LOAD, tasks=('depth',), **kwargs
        )
        return dataset[1]

    with pytest.raises(
        DataFileError, match=rf'1\.npy: depths reach .*max_depth={default}'
    ):
        load()
    assert load(max_depth=None)
    assert dataset_type(data_root=root, pipeline=LOAD, tasks=('depth',))[
        0
    ]  # in range
