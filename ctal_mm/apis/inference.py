"""Building a trained model from its config and checkpoint: MMSegmentation's
``init_model`` for multitask models, and the input size it is fed at.

``inference_model`` and :class:`~ctal_mm.apis.MultiTaskInferencer` (folders,
batches, output files) predict with it (``multitask_inferencer.py``).
"""

import copy
from typing import Optional, Tuple, Union

from mmengine.config import Config, ConfigDict
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope

from ctal_mm.datasets import dataset_metainfo
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import MODELS
from ctal_mm.utils import register_all_modules
from ctal_mm.utils.model_weights import load_model_weights


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


def model_input_size(
    model: BaseModel, cfg: Optional[Config] = None
) -> Optional[Tuple[int, int]]:
    """The (h, w) images are brought to before ``model`` predicts, or None.

    The model's :meth:`~ctal_mm.models.MultiTaskEncoderDecoder.fixed_input_size`
    if it has one (CTAL), else the size its data preprocessor pads test
    inputs to, else the ``img_size`` of the test dataset of ``cfg`` (default
    ``model.cfg``; the synthetic scenes). None: the model takes any size
    (e.g. HPS on NYUv2's files) and the inferencer feeds images at their own
    size.
    """
    fixed = model.fixed_input_size()
    if fixed is not None:
        return fixed
    padding = getattr(model.data_preprocessor, 'test_padding', None) or {}
    if padding.get('size'):
        return tuple(int(s) for s in padding['size'])
    if cfg is None:
        cfg = getattr(model, 'cfg', None) or {}
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    if dataset.get('img_size'):
        return tuple(int(s) for s in dataset['img_size'])
    return None
