"""Random inputs shaped like a dataset's, and models of the base configs, for tests and
benchmarks.

Like ``mmseg.testing``: nothing here reads data from disk.
"""

import os.path as osp
import tempfile
from typing import Mapping, Sequence

import torch

from ctal_mm.structures import MultiTaskDataSample, get_task_kind

__all__ = [
    'random_multitask_samples',
    'random_multitask_batch',
    'base_model_config',
]


def random_multitask_samples(
    tasks: Mapping[str, Mapping],
    size: Sequence[int],
    n: int = 2,
    seed: int = 0,
):
    """``n`` data samples with random ground truth for every task.

    Each task map has the value range of its kind and a region the metrics
    and losses must skip: an ignored band (labels, edges, saliency: 255),
    invalid depth (0), invalid normals (all zero); drawn by the kind's
    ``random_gt`` (ctal_mm/structures/task_kinds.py).

    Args:
        tasks: the model's task spec (``{name: dict(kind=..., channels=...)}``).
        size: (H, W) of the maps.
    """
    size = tuple(size)
    kinds = {
        name: get_task_kind(name, {name: spec.get('kind')})
        for name, spec in tasks.items()
    }
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        # task_kinds as PackMultiTaskInputs sets it, so kinds of any name pad correctly
        sample = MultiTaskDataSample(
            metainfo=dict(
                ori_shape=size,
                img_shape=size,
                task_kinds={name: kind.name for name, kind in kinds.items()},
            )
        )
        for name, spec in tasks.items():
            kind = kinds[name]
            if kind.random_gt is None:
                raise ValueError(
                    f'Task {name!r}: kind {kind.name!r} has no random_gt, so '
                    'ctal_mm.testing cannot draw its ground truth; give its '
                    'TaskKind a random_gt(size, channels, generator).'
                )
            gt = kind.random_gt(size, spec['channels'], g)
            sample.set_gt(name, gt)
        samples.append(sample)
    return samples


def random_multitask_batch(
    tasks: Mapping[str, Mapping],
    size: Sequence[int],
    batch_size: int = 2,
    seed: int = 0,
) -> dict:
    """A batch as a dataloader gives it to ``model.train_step``: uint8-range
    images (3 x H x W) and their data samples."""
    g = torch.Generator().manual_seed(seed + 1)
    inputs = [
        torch.randint(0, 256, (3, *size), generator=g).float()
        for _ in range(batch_size)
    ]
    return dict(
        inputs=inputs,
        data_samples=random_multitask_samples(tasks, size, batch_size, seed),
    )


def base_model_config(
    model_base: str, dataset_base: str = 'configs/_base_/datasets/nyuv2.py'
):
    """The ``model`` a model base config builds with the tasks and data preprocessor of a
    dataset base config (the part of an experiment config inheriting the two that comes
    from them). Paths are relative to the working directory or absolute."""
    from mmengine.config import Config

    from ctal_mm.engine.config_loading import load_config

    bases = [osp.abspath(model_base), osp.abspath(dataset_base)]
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'base_model.py')
        with open(path, 'w') as f:
            # what an experiment config joining the two writes (docs/add_new_task.md)
            f.write(
                f'_base_ = {bases!r}\n'
                'model = dict(data_preprocessor=_base_.data_preprocessor, '
                'tasks=_base_.model_tasks)\n'
            )
        cfg = load_config(path)
    return Config(dict(model=cfg.model)).model
