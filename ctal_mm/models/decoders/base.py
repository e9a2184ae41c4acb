"""What multitask decoders share: the parsed task spec, the one-feature-map input, and
the two-stage structure of CTAL, PAD-Net and PAP-Net."""

from collections import OrderedDict
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from ctal_mm.registry import MODELS

from ..activation_checkpoint import checkpointed


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

    #: the attribute holding a module built for one ``feature_size`` (CTAL's
    #: ``'affinity'``), which fixes the model's input size; None: any size
    fixed_size_module: Optional[str] = None

    def __init__(self, tasks: Mapping[str, Mapping], init_cfg=None):
        super().__init__(init_cfg)
        self.task_channels = task_channels(tasks, type(self).__name__)
        self.task_names = list(self.task_channels)

    def fixed_feature_size(self) -> Optional[Tuple[int, int]]:
        """(h, w) of the finest input map this decoder accepts, or None if it
        accepts any (config key ``decoder.<fixed_size_module>.feature_size``).
        """
        if self.fixed_size_module is None:
            return None
        module = getattr(self, self.fixed_size_module)
        return tuple(int(s) for s in module.feature_size)

    def build_per_task(self, cfg: dict, **kwargs) -> nn.ModuleDict:
        """One module per task from ``cfg``, with ``out_channels`` set to the task's."""
        return nn.ModuleDict(
            {
                task: MODELS.build(dict(cfg, out_channels=channels, **kwargs))
                for task, channels in self.task_channels.items()
            }
        )


TaskMaps = Dict[str, Tensor]


def _call(function, *args, **kwargs):
    return function(*args, **kwargs)


class TwoStageDecoder(BaseMultiTaskDecoder):
    """Initial task heads -> cross-task module -> final task heads, on one feature map.

    Per task an initial head turns the shared features into the task's features and its
    initial prediction (stage ``initial``, supervised); the cross-task module, the part
    each subclass defines, turns the tasks' features into refined features per task; per
    task a final head predicts from them (stage ``final``). The forward returns
    ``dict(initial={task: logits}, final={task: logits})``.

    A subclass implements :meth:`build_cross_task` (build and assign its modules, return
    the channels of the refined features: the final heads' ``in_channels``) and
    :meth:`cross_task`. The modules are built in the order initial heads, cross-task
    module, final heads, so the parameters are initialised in that order.

    Args:
        tasks (dict): The model's task spec, ``{name: dict(channels=...)}``.
        in_channels (int): Channels of the shared feature map.
        initial_head (dict): Config of the initial head, built per task with
            ``in_channels`` and ``out_channels`` (the task's); called with
            ``return_features=True`` it must return ``(features, logits)``.
        final_head (dict): Config of the final head, built per task with
            ``in_channels`` (what :meth:`build_cross_task` returns) and ``out_channels``.
        cross_task (dict): Keyword arguments of :meth:`build_cross_task`.
        with_cp (bool): Activation checkpointing of the heads: keep only each head's
            input and recompute it in backward (same results, less memory, a little
            more time).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        tasks: Mapping[str, Mapping],
        in_channels: int,
        initial_head: dict,
        final_head: dict,
        cross_task: Optional[Mapping] = None,
        with_cp: bool = False,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(tasks, init_cfg)
        self.with_cp = with_cp
        self.initial_heads = self.build_per_task(
            initial_head, in_channels=in_channels
        )
        refined_channels = self.build_cross_task(**dict(cross_task or {}))
        self.final_heads = self.build_per_task(
            final_head, in_channels=refined_channels
        )

    def build_cross_task(self, **kwargs) -> int:
        """Build the cross-task module; return the channels of its per-task output."""
        raise NotImplementedError(
            f'{type(self).__name__} must implement build_cross_task().'
        )

    def cross_task(self, features: TaskMaps) -> TaskMaps:
        """``{task: initial-head features}`` -> ``{task: refined features}``."""
        raise NotImplementedError(
            f'{type(self).__name__} must implement cross_task().'
        )

    def forward(self, inputs: FeatureInputs) -> Dict[str, TaskMaps]:
        x = single_feature_map(inputs, type(self).__name__)
        run = checkpointed if self.with_cp else _call
        features, initial = {}, {}
        for task, head in self.initial_heads.items():
            features[task], initial[task] = run(head, x, return_features=True)
        refined = self.cross_task(features)
        final = {
            task: run(head, refined[task])
            for task, head in self.final_heads.items()
        }
        return dict(initial=initial, final=final)
