"""NYUv2 in MTAN's preprocessed layout (13 classes, 288 x 384): semseg, depth, normals."""

from typing import Optional, Tuple

from ctal_mm.registry import DATASETS

from .file_io import DEFAULT_MAX_DEPTH
from .mtan import MTANDataset
from .transforms.loading import check_normals_gt

NYUV2_CLASSES = (
    'bed',
    'books',
    'ceiling',
    'chair',
    'floor',
    'furniture',
    'objects',
    'picture',
    'sofa',
    'table',
    'tv',
    'wall',
    'window',
)
NYUV2_PALETTE = [
    [0, 0, 255],
    [233, 89, 48],
    [0, 218, 0],
    [149, 0, 240],
    [222, 241, 24],
    [255, 206, 206],
    [0, 224, 229],
    [106, 136, 204],
    [117, 29, 41],
    [240, 35, 235],
    [0, 167, 156],
    [249, 139, 0],
    [225, 229, 194],
]


@DATASETS.register_module()
class NYUv2Dataset(MTANDataset):
    """NYUv2 as preprocessed by MTAN (795 train, 654 val images of 288 x 384).

    Layout: ``data_root/{train,val}/{image,label,depth,normal}/<i>.npy``: image H x W x 3 floats
    in [0, 1] (loaded on the 0..255 scale), label H x W floats with 13 classes and -1 = ignore
    (loaded as 255), depth H x W (x 1) metres with 0 = invalid, normal H x W x 3 in [-1, 1]
    with all-zero = invalid. This is the MTAN protocol (13 classes, depth abs/rel error), not the
    40-class "NYUD-MT" protocol of ATRC / InvPT.

    Args:
        max_depth: depth files with values above this many metres are refused as a unit
            mix-up (default 20; None: no check).
        normals_gt: 'stored' (the file's vectors, a vector whose components sum to 0
            invalid: the CNN reference) or 'unit' (rescaled to unit length).
        **kwargs: see :class:`BaseMultiTaskDataset` (``data_root``, ``split``, ``tasks``...).
    """

    METAINFO = dict(
        tasks=('semseg', 'depth', 'normals'),
        task_kinds=dict(
            semseg='segmentation', depth='depth', normals='normals'
        ),
        classes=NYUV2_CLASSES,
        palette=NYUV2_PALETTE,
    )

    def __init__(
        self,
        max_depth: Optional[float] = DEFAULT_MAX_DEPTH,
        normals_gt: str = 'stored',
        **kwargs,
    ):
        self.normals_gt = check_normals_gt(normals_gt, type(self).__name__)
        super().__init__(max_depth=max_depth, **kwargs)

    def task_source(self, task: str) -> Tuple[str, str, dict]:
        return {
            'semseg': (
                'label',
                'npy_label',
                dict(num_classes=len(NYUV2_CLASSES)),
            ),
            'depth': ('depth', 'npy_depth', {}),
            'normals': (
                'normal',
                'npy_normals',
                dict(normals_gt=self.normals_gt),
            ),
        }[task]
