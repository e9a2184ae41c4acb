from .base_multitask_dataset import BaseMultiTaskDataset, dataset_metainfo
from .cityscapes import CityscapesMTDataset
from .file_io import DataFileError
from .mtan import MTANDataset
from .nyud_mt import NYUDMTDataset
from .nyuv2 import NYUv2Dataset
from .pascal_context import PascalContextMTDataset
from .synthetic import SyntheticScenesDataset, render_scene
from .transforms import *  # noqa: F401,F403

__all__ = [
    'BaseMultiTaskDataset',
    'MTANDataset',
    'NYUv2Dataset',
    'NYUDMTDataset',
    'CityscapesMTDataset',
    'PascalContextMTDataset',
    'SyntheticScenesDataset',
    'render_scene',
    'DataFileError',
    'dataset_metainfo',
]
