"""Small pieces shared by the baseline decoders (HPS, PAD-Net, PAP-Net, ...).

Each baseline decoder receives the model's task spec (``tasks=``), builds
per-task modules from it and returns ``{stage: {task: logits}}``.
"""

from collections import OrderedDict
from typing import Dict, Mapping, Sequence, Union

from torch import Tensor, nn

from ctal_mm.registry import MODELS

TaskSpecs = Mapping[str, Mapping]
FeatureInputs = Union[Tensor, Sequence[Tensor]]


def parse_task_channels(tasks: TaskSpecs, owner: str) -> Dict[str, int]:
    """Read ``{task: output channels}`` from a model task spec.

    Args:
        tasks (Mapping): ``{name: dict(channels=int, ...)}``, in task order.
        owner (str): Name of the module asking, used in error messages.

    Returns:
        OrderedDict[str, int]: Output channels per task, in the given order.
    """
    if not isinstance(tasks, Mapping) or not tasks:
        raise ValueError(
            f'{owner}: tasks={tasks!r}; expected a non-empty dict '
            '{task_name: dict(kind=..., channels=..., ...)} as in the '
            "config's model.tasks."
        )
    channels = OrderedDict()
    for name, spec in tasks.items():
        value = spec.get('channels') if isinstance(spec, Mapping) else None
        if not isinstance(value, int) or value < 1:
            raise ValueError(
                f'{owner}: tasks[{name!r}] = {spec!r} has no positive int '
                "'channels'; set model.tasks."
                f'{name}.channels to the number of output channels.'
            )
        channels[name] = value
    return channels


def build_task_heads(
    head_cfg: dict, task_channels: Mapping[str, int], **kwargs
) -> nn.ModuleDict:
    """Build one head per task from a config.

    Args:
        head_cfg (dict): Head config; ``out_channels`` is set per task.
        task_channels (Mapping[str, int]): Output channels per task.
        **kwargs: Extra constructor arguments for every head (they override
            the config's, e.g. ``in_channels`` fixed by the decoder).

    Returns:
        nn.ModuleDict: ``{task: head}``.
    """
    return nn.ModuleDict(
        {
            task: MODELS.build(
                dict(head_cfg, out_channels=out_channels, **kwargs)
            )
            for task, out_channels in task_channels.items()
        }
    )


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
    shapes = [tuple(x.shape) for x in inputs]
    raise ValueError(
        f'{owner} works on one feature map but received {len(shapes)} '
        f'({shapes}); fuse them first (e.g. neck=dict(type='
        "'HRNetFuseNeck')) or give the backbone a single out_index."
    )
