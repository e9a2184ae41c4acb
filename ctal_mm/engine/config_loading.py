"""Reading a config file the way every ctal_mm entry point does.

A ctal_mm config names its dataset's settings once, in the dataset base config: the task set
(``tasks`` / ``task_specs``, :mod:`ctal_mm.engine.task_specs`) and the data preprocessor
(``data_preprocessor``, which the model uses). :func:`resolve_config` turns those into the
model's, the dataloaders' and the evaluators' settings; :func:`load_config` reads a file,
applies ``--cfg-options`` and resolves it. tools/train.py and tools/test.py, ``init_model``,
the analysis tools and converters all load configs with it, and
:class:`~ctal_mm.engine.runner.MultiTaskRunner` (the configs' ``runner_type``) resolves the
config it is built from, so ``RUNNERS.build(Config.fromfile(path))`` sees the same settings.
"""

import argparse
import copy
from typing import Mapping, Optional, Union

from mmengine.config import Config, ConfigDict, DictAction

from .task_specs import apply_task_specs


def apply_data_preprocessor(cfg: Config) -> Config:
    """``model.data_preprocessor`` from the dataset's ``data_preprocessor`` (in place).

    The model's own entries, where a config sets any, are merged over the dataset's
    (``_delete_=True`` replaces it); a config without a top-level ``data_preprocessor`` is
    left as it is.
    """
    dataset_preprocessor = cfg.get('data_preprocessor')
    model = cfg.get('model')
    if not isinstance(dataset_preprocessor, Mapping) or not isinstance(
        model, Mapping
    ):
        return cfg
    own = model.get('data_preprocessor')
    merged = Config._merge_a_into_b(
        copy.deepcopy(dict(own or {})), copy.deepcopy(dataset_preprocessor)
    )
    model['data_preprocessor'] = ConfigDict(merged)
    return cfg


def resolve_config(cfg: Union[Config, dict]) -> Config:
    """``cfg`` (a Config, or a dict made one) with the dataset's task set and data
    preprocessor wired into the model, the dataloaders and the evaluators, in place.
    Resolving a resolved config changes nothing."""
    if not isinstance(cfg, Config):
        cfg = Config(dict(cfg))
    apply_data_preprocessor(cfg)
    apply_task_specs(cfg)
    return cfg


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """The config file ``path`` with ``cfg_options`` (``--cfg-options``' dict) merged, then
    resolved (:func:`resolve_config`)."""
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return resolve_config(cfg)


def add_cfg_options_argument(
    parser: argparse.ArgumentParser, example: Optional[str] = None
) -> None:
    """The ``--cfg-options KEY=VALUE ...`` flag every tool takes, for :func:`load_config`."""
    text = 'override config settings, xxx=yyy pairs merged into the config'
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help=text if example is None else f'{text}, e.g. {example}',
    )
