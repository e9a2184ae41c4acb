"""What every multitask decoder shares: the parsed task spec."""

from collections import OrderedDict
from typing import Dict, Mapping

import torch.nn as nn
from mmengine.model import BaseModule

from ctal_mm.registry import MODELS


def task_channels(tasks: Mapping[str, Mapping], owner: str) -> Dict[str, int]:
    """``{task: output channels}`` of a model task spec, in config order."""
    if not isinstance(tasks, Mapping) or not tasks:
        raise ValueError(
            f'{owner}: tasks={tasks!r}; expected a non-empty dict '
            "{task: dict(kind=..., channels=...)} as in the config's model.tasks."
        )
    channels = OrderedDict()
    for name, spec in tasks.items():
        value = spec.get('channels') if isinstance(spec, Mapping) else None
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f'{owner}: model.tasks.{name} = {spec!r} needs a positive int '
                f"'channels' (the task's output channels)."
            )
        channels[name] = value
    return channels


class BaseMultiTaskDecoder(BaseModule):
    """A decoder maps backbone/neck features to ``{stage: {task: logits}}``.

    Subclasses build their modules from ``self.task_channels`` and return e.g.
    ``dict(initial={...}, final={...})``; the model supervises every stage it gets.
    """

    def __init__(self, tasks: Mapping[str, Mapping], init_cfg=None):
        super().__init__(init_cfg)
        self.task_channels = task_channels(tasks, type(self).__name__)
        self.task_names = list(self.task_channels)

    def build_per_task(self, cfg: dict, **kwargs) -> nn.ModuleDict:
        """One module per task from ``cfg``, with ``out_channels`` set to the task's."""
        return nn.ModuleDict(
            {
                task: MODELS.build(dict(cfg, out_channels=channels, **kwargs))
                for task, channels in self.task_channels.items()
            }
        )
