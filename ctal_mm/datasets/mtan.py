"""The MTAN layout shared by NYUv2 and Cityscapes: ``root/<split>/<folder>/<i>.npy``."""

import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from ctal_mm.utils.misc import few

from .base_multitask_dataset import BaseMultiTaskDataset
from .file_io import DataFileError


def numbered_npy_files(folder: str) -> Dict[str, str]:
    """``{name: path}`` of the files ``<i>.npy`` in ``folder``, keyed by the name as written
    (``'01'`` and ``'1'`` are different files), in numeric order; other file types are
    skipped.

    Raises:
        DataFileError: a .npy file whose name is not a number, two names of one number
            (``1.npy`` and ``01.npy``), or no .npy file at all.
    """
    files, by_number = {}, {}
    for name in sorted(os.listdir(folder)):
        stem, ext = osp.splitext(name)
        if ext != '.npy':
            continue
        if not stem.isdigit():
            raise DataFileError(
                f'{osp.join(folder, name)}: MTAN files are named <index>.npy '
                '(0.npy, 1.npy, ...); rename or remove this file.'
            )
        other = by_number.setdefault(int(stem), stem)
        if other != stem:
            raise DataFileError(
                f'{folder}: {other}.npy and {stem}.npy are both sample '
                f'{int(stem)}; MTAN files are named <index>.npy without leading '
                'zeros. Remove or rename one of them.'
            )
        files[stem] = osp.join(folder, name)
    if not files:
        raise DataFileError(
            f'{folder}: holds no <index>.npy files. Re-extract the dataset '
            '(see docs/dataset_prepare.md).'
        )
    return dict(sorted(files.items(), key=lambda item: int(item[0])))


def _npy_names(names) -> str:
    return few(
        [f'{n}.npy' for n in sorted(names, key=lambda n: (int(n), n))], count=5
    )


class MTANDataset(BaseMultiTaskDataset):
    """A dataset in MTAN's preprocessed layout: ``data_root/<split>/<folder>/<i>.npy``.

    Images are ``image/<i>.npy`` (H x W x 3 floats in [0, 1]); subclasses map each task to its
    folder and decoder in :meth:`task_source`. Every selected task's folder must hold the same
    names as ``image/`` (compared as written: ``01.npy`` does not stand for ``1.npy``).

    Args:
        max_depth: depth files whose values exceed it are refused as a unit mix-up or
            corruption (None: no check); each dataset sets its own default.
        **kwargs: see :class:`BaseMultiTaskDataset`.
    """

    def __init__(self, max_depth: Optional[float] = None, **kwargs):
        self.max_depth = max_depth
        super().__init__(**kwargs)

    def _source(self, task: str) -> Tuple[str, str, dict]:
        folder, decoder, options = self.task_source(task)
        if decoder == 'npy_depth':
            options = dict(options, max_depth=self.max_depth)
        return folder, decoder, options

    def task_source(self, task: str) -> Tuple[str, str, dict]:
        """(folder, decoder, decoder options) of ``task``."""
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        split_dir = self.require_dir(
            osp.join(self.data_root, self.split), f'the {self.split} split'
        )
        image_dir = self.require_dir(osp.join(split_dir, 'image'), 'images')
        images = numbered_npy_files(image_dir)
        sources = {}
        for task in self.tasks:
            folder, decoder, options = self._source(task)
            task_dir = self.require_dir(
                osp.join(split_dir, folder), f'the {task!r} maps'
            )
            files = numbered_npy_files(task_dir)
            missing = images.keys() - files.keys()
            extra = files.keys() - images.keys()
            if missing or extra:
                raise DataFileError(
                    f'{type(self).__name__}: {task_dir} has {len(files)} '
                    f'.npy files but {image_dir} has {len(images)}'
                    + (
                        f'; missing here: {_npy_names(missing)}'
                        if missing
                        else ''
                    )
                    + (
                        f'; without an image: {_npy_names(extra)}'
                        if extra
                        else ''
                    )
                    + '. Every task folder must hold one file per image: '
                    're-extract the dataset (see docs/dataset_prepare.md).'
                )
            sources[task] = (files, decoder, options)
        data_list = []
        for index in images:
            ann_info = {
                task: dict(decoder=decoder, path=files[index], **options)
                for task, (files, decoder, options) in sources.items()
            }
            data_list.append(
                dict(
                    img_path=images[index],
                    task_kinds=dict(self.task_kinds),
                    ann_info=ann_info,
                )
            )
        return data_list
