"""Cityscapes in MTAN's preprocessed layout (128 x 256): semseg (19 or 7 classes), depth."""

from typing import Optional, Tuple

from ctal_mm.registry import DATASETS

from .mtan import MTANDataset

CITYSCAPES_19_CLASSES = (
    'road',
    'sidewalk',
    'building',
    'wall',
    'fence',
    'pole',
    'traffic light',
    'traffic sign',
    'vegetation',
    'terrain',
    'sky',
    'person',
    'rider',
    'car',
    'truck',
    'bus',
    'train',
    'motorcycle',
    'bicycle',
)
CITYSCAPES_19_PALETTE = [
    [128, 64, 128],
    [244, 35, 232],
    [70, 70, 70],
    [102, 102, 156],
    [190, 153, 153],
    [153, 153, 153],
    [250, 170, 30],
    [220, 220, 0],
    [107, 142, 35],
    [152, 251, 152],
    [70, 130, 180],
    [220, 20, 60],
    [255, 0, 0],
    [0, 0, 142],
    [0, 0, 70],
    [0, 60, 100],
    [0, 80, 100],
    [0, 0, 230],
    [119, 11, 32],
]
# Cityscapes' 7 non-void categories, in MTAN's label_7 order, with their usual colours.
CITYSCAPES_7_CLASSES = (
    'flat',
    'construction',
    'object',
    'nature',
    'sky',
    'human',
    'vehicle',
)
CITYSCAPES_7_PALETTE = [
    [128, 64, 128],
    [70, 70, 70],
    [153, 153, 153],
    [107, 142, 35],
    [70, 130, 180],
    [220, 20, 60],
    [0, 0, 142],
]
LABEL_SETS = {
    'label_19': (CITYSCAPES_19_CLASSES, CITYSCAPES_19_PALETTE),
    'label_7': (CITYSCAPES_7_CLASSES, CITYSCAPES_7_PALETTE),
}
DEFAULT_LABEL_SET = 'label_19'


@DATASETS.register_module()
class CityscapesMTDataset(MTANDataset):
    """Cityscapes as preprocessed by MTAN (2975 train, 500 val images of 128 x 256).

    Layout: ``data_root/{train,val}/{image,label_7,label_19,depth}/<i>.npy``: image H x W x 3
    floats in [0, 1] (loaded on the 0..255 scale), labels H x W floats with -1 = ignore (loaded as
    255), depth H x W (x 1) with 0 = invalid, kept in the files' units.

    Args:
        label_set: 'label_19' (the 19 evaluation classes; the CTAL reference's choice, default)
            or 'label_7' (the 7 categories).
        metainfo: overrides; ``classes`` / ``palette`` default to the chosen label set's.
        max_depth: depth files with values above it are refused (default 1000, beyond any
            depth Cityscapes' stereo gives in metres, so only corrupt or rescaled files fail;
            None: no check).
        **kwargs: see :class:`BaseMultiTaskDataset` (``data_root``, ``split``, ``tasks``...).
    """

    METAINFO = dict(
        tasks=('semseg', 'depth'),
        task_kinds=dict(semseg='segmentation', depth='depth'),
        classes=CITYSCAPES_19_CLASSES,
        palette=CITYSCAPES_19_PALETTE,
    )

    def __init__(
        self,
        label_set: str = DEFAULT_LABEL_SET,
        metainfo: Optional[dict] = None,
        max_depth: Optional[float] = 1000.0,
        **kwargs,
    ):
        if label_set not in LABEL_SETS:
            raise ValueError(
                f'CityscapesMTDataset: label_set={label_set!r}; expected one '
                f'of {sorted(LABEL_SETS)}.'
            )
        self.label_set = label_set
        classes, palette = LABEL_SETS[label_set]
        metainfo = dict(classes=classes, palette=palette, **(metainfo or {}))
        super().__init__(metainfo=metainfo, max_depth=max_depth, **kwargs)

    def task_source(self, task: str) -> Tuple[str, str, dict]:
        num_classes = len(LABEL_SETS[self.label_set][0])
        return {
            'semseg': (
                self.label_set,
                'npy_label',
                dict(num_classes=num_classes),
            ),
            'depth': ('depth', 'npy_depth', {}),
        }[task]
