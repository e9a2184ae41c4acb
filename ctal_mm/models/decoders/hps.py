"""Hard parameter sharing (HPS): one shared encoder, one head per task.

The CTAL reference's HPS baseline puts a task head straight on the backbone:
for HRNet an HRNet head per task (fuse the four maps at stride 4, 1x1 conv,
BN, ReLU, 1x1 conv to the task's channels), for Swin a DeepLab-v3 head per
task. Supervised stage: ``final``. The single-task baseline (STL) uses the
same decoder with one backbone per task, see
:class:`ctal_mm.models.SingleTaskEncoderDecoder`.
"""

from typing import Dict, Mapping, Optional, Sequence, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from ctal_mm.registry import MODELS

from .base import BaseMultiTaskDecoder


@MODELS.register_module()
class HRNetTaskHead(BaseModule):
    """HRNet's segmentation head for one task.

    Resize the multi-scale maps to the finest one, concatenate, 1x1 conv
    (with bias), BN, ReLU (the fuse neck), then a 1x1 conv to the task's
    channels.

    Args:
        in_channels (Sequence[int]): Channels of the maps, finest first.
        out_channels (int): The task's output channels.
        fuse (dict): Config of the fusing module, built with
            ``in_channels``. Default: ``HRNetFuseNeck``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        fuse: dict = dict(type='HRNetFuseNeck'),
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        self.fuse = MODELS.build(dict(fuse, in_channels=list(in_channels)))
        self.conv_out = nn.Conv2d(sum(in_channels), out_channels, 1)

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        return self.conv_out(self.fuse(list(inputs)))


@MODELS.register_module()
class HPSDecoder(BaseMultiTaskDecoder):
    """One head per task on the shared features (or on per-task features).

    Args:
        tasks (dict): The model's task spec, ``{name: dict(channels=...)}``.
        head (dict): Head config, built per task with ``out_channels`` (and
            ``in_channels`` if given here).
        in_channels (int | Sequence[int], optional): Passed to every head.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        tasks: Mapping[str, Mapping],
        head: dict,
        in_channels: Union[int, Sequence[int], None] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(tasks, init_cfg)
        extra = {} if in_channels is None else dict(in_channels=in_channels)
        self.heads = self.build_per_task(head, **extra)

    def forward(self, inputs) -> Dict[str, Dict[str, Tensor]]:
        """Predict every task.

        Args:
            inputs: The shared backbone (or neck) output, or a mapping
                ``{task: that task's own backbone output}`` (single-task
                networks).
        """
        if isinstance(inputs, Mapping):
            missing = set(self.task_channels) - set(inputs)
            if missing:
                raise KeyError(
                    f'{type(self).__name__}: per-task features lack tasks '
                    f'{sorted(missing)}; got {sorted(inputs)}.'
                )
            return dict(
                final={
                    task: head(_unwrap(inputs[task]))
                    for task, head in self.heads.items()
                }
            )
        inputs = _unwrap(inputs)
        return dict(
            final={task: head(inputs) for task, head in self.heads.items()}
        )


def _unwrap(inputs):
    """A one-map sequence (e.g. Swin's output) becomes the map itself."""
    if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
        return inputs[0]
    return inputs
