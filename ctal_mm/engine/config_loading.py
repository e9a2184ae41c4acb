"""Reading a config file the way every ctal_mm tool does: ``Config.fromfile`` and the
``--cfg-options`` overrides, nothing else. A config file is the whole truth: the dataset base
configs derive the model's, the datasets' and the evaluators' task settings in the file itself
(docs/add_new_task.md), so ``Config.fromfile(path)`` + ``Runner.from_cfg`` builds what the
tools build.
"""

import argparse
from typing import Optional

from mmengine.config import Config, DictAction


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """The config file ``path`` with ``cfg_options`` (``--cfg-options``' dict) merged."""
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


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
