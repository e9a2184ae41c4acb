"""Checks across the splits of a run: the same image in training and evaluation."""

import os.path as osp
from typing import List, Optional, Set

from ctal_mm.utils.misc import few


def sample_files(dataset) -> Optional[Set[str]]:
    """The image files (real paths) of a built dataset, through mmengine's dataset
    wrappers; None when they cannot be told (a lazily initialised or path-less dataset)."""
    if hasattr(dataset, 'datasets'):  # ConcatDataset
        parts = [sample_files(d) for d in dataset.datasets]
        if any(p is None for p in parts):
            return None
        return set().union(*parts)
    if hasattr(dataset, 'dataset'):  # RepeatDataset, ClassBalancedDataset
        return sample_files(dataset.dataset)
    if not getattr(dataset, '_fully_initialized', False):
        return None
    files = set()
    # get_data_info: mmengine serialises data_list (serialize_data=True) and empties it
    for index in range(len(dataset)):
        path = dataset.get_data_info(index).get('img_path')
        if path is None:
            return None
        files.add(osp.realpath(path))
    return files


def split_overlap(train_dataset, val_dataset) -> List[str]:
    """The image files both datasets hold, sorted (empty when none or unknown)."""
    train, val = sample_files(train_dataset), sample_files(val_dataset)
    if not train or not val:
        return []
    return sorted(train & val)


def split_overlap_message(
    shared: List[str], train_name: str, val_name: str
) -> str:
    return (
        f'{len(shared)} image(s) are in both the training ({train_name}) and the '
        f'validation ({val_name}) data: {few(shared, 5)}. The validation scores of '
        'these images measure memorisation; remove them from one split file.'
    )
