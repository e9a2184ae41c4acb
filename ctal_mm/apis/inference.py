"""Building a trained model from its config and checkpoint, and predicting on images.

``init_model`` and ``inference_model`` are MMSegmentation's two functions for multitask models;
:class:`~ctal_mm.apis.MultiTaskInferencer` is the full tool (folders, batches, output files).
"""

import copy
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope

from ctal_mm.datasets import dataset_metainfo
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import MODELS
from ctal_mm.structures import MultiTaskDataSample
from ctal_mm.utils import register_all_modules
from ctal_mm.utils.input_size import config_input_size
from ctal_mm.utils.model_weights import load_model_weights

ImageType = Union[str, np.ndarray]


def _as_config(config, cfg_options=None) -> Config:
    """A config file (read with ``load_config``) or a copy of a config."""
    if isinstance(config, str):
        return load_config(config, cfg_options)
    if isinstance(config, (Config, ConfigDict, dict)):
        config = Config(copy.deepcopy(dict(config)))
    else:
        raise TypeError(
            'config must be a file path or a Config, got '
            f'{type(config).__name__}.'
        )
    if cfg_options:
        config.merge_from_dict(cfg_options)
    return config


def dataset_meta_of(cfg: Config, checkpoint: Optional[dict] = None) -> dict:
    """Class names, palettes and task kinds for drawing and writing predictions.

    The checkpoint's ``meta.dataset_meta`` (what the Runner saved from the training set) if it
    has one, else the metainfo of the config's test dataset
    (:func:`~ctal_mm.datasets.dataset_metainfo`: no data file is read), else an empty dict
    (palettes are then generated).
    """
    meta = ((checkpoint or {}).get('meta') or {}).get('dataset_meta')
    if meta:
        return dict(meta)
    dataset = (cfg.get('test_dataloader') or {}).get('dataset')
    return dataset_metainfo(dataset) or {}


def init_model(
    config: Union[str, Config],
    checkpoint: Optional[str] = None,
    device: str = 'cpu',
    cfg_options: Optional[dict] = None,
) -> BaseModel:
    """Build the model of ``config`` and load ``checkpoint`` into it, strictly.

    Args:
        config: config file or Config.
        checkpoint: checkpoint file (or URL); None keeps the random initialisation.
        device: where the model goes.
        cfg_options: overrides merged into the config.

    Returns:
        The model in eval mode, with ``model.cfg`` (the config) and ``model.dataset_meta``.

    Raises:
        CheckpointMismatchError: the checkpoint does not fit the model (another model, task set,
            number of classes or input size); the message names the keys.
    """
    register_all_modules(init_default_scope=False)
    cfg = _as_config(config, cfg_options)
    init_default_scope(cfg.get('default_scope', 'ctal_mm'))
    # backbone ImageNet weights are for training: the checkpoint holds them
    cfg.model.pop('pretrained', None)
    if isinstance(cfg.model.get('backbone'), dict):
        cfg.model.backbone.pop('init_cfg', None)
    model = MODELS.build(cfg.model)
    loaded = None
    if checkpoint is not None:
        loaded = load_model_weights(model, checkpoint, strict=True)
    model.cfg = cfg
    model.dataset_meta = dataset_meta_of(cfg, loaded)
    model.to(device)
    model.eval()
    return model


def affinity_feature_size(model: torch.nn.Module) -> Optional[Tuple]:
    """The feature size a CTAL affinity module inside ``model`` is built for, or None.

    Such a model accepts only one input size (the fusion conv has one kernel per position).
    """
    from ctal_mm.models.decoders.ctal import CrossTaskAffinityModule

    for module in model.modules():
        if isinstance(module, CrossTaskAffinityModule):
            return module.feature_size
    return None


def model_input_size(cfg: Config) -> Optional[Tuple[int, int]]:
    """The (h, w) the config trains and tests at, or None if it does not fix one.

    In this order: the data preprocessor's (test) pad size or CTAL's affinity feature size
    times the backbone stride (:func:`ctal_mm.utils.input_size.config_input_size`), then the
    test dataset's ``img_size`` (the synthetic scenes). A model without any (e.g. HPS on
    NYUv2's files) accepts any size: the inferencer then feeds images at their own size.
    """
    try:
        return tuple(int(s) for s in config_input_size(cfg))
    except ValueError:
        pass
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    if dataset.get('img_size'):
        return tuple(int(s) for s in dataset['img_size'])
    return None


def inference_model(
    model: BaseModel, imgs: Union[ImageType, Sequence[ImageType]]
) -> Union[MultiTaskDataSample, List[MultiTaskDataSample]]:
    """Predict every task on one image or a list (paths or BGR arrays as mmcv reads them).

    Each image is brought to the model's input size (resized, see
    :class:`~ctal_mm.apis.MultiTaskInferencer`) and every ``pred_<task>`` comes back at the
    image's original size.

    Returns:
        One :class:`MultiTaskDataSample` for one image, a list for a list.
    """
    from .multitask_inferencer import MultiTaskInferencer

    inferencer = MultiTaskInferencer(model, show_progress=False)
    single = not isinstance(imgs, (list, tuple))
    result = inferencer(imgs, return_datasamples=True)['predictions']
    if single:
        return result[0]
    return result
