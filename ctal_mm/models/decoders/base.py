"""What every multitask decoder shares: the parsed task spec, the one-feature-map input."""

from collections import OrderedDict
from typing import Dict, Mapping, Sequence, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

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


FeatureInputs = Union[Tensor, Sequence[Tensor]]


def single_feature_map(inputs: FeatureInputs, owner: str) -> Tensor:
    """Return the one feature map of a backbone/neck output.

    Args:
        inputs (Tensor | Sequence[Tensor]): A map, or a sequence holding
            exactly one map (e.g. Swin with ``out_indices=(3,)``).
        owner (str): Name of the module asking, used in error messages.
    """
    if isinstance(inputs, Tensor):
        return inputs
    if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
        return inputs[0]
    shapes = [tuple(getattr(x, 'shape', ())) for x in inputs]
    raise ValueError(
        f'{owner} works on one feature map but received {len(shapes)} '
        f'({shapes}); fuse them first (model.neck=dict(type='
        "'HRNetFuseNeck', ...)) or give the backbone a single out_index."
    )


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
