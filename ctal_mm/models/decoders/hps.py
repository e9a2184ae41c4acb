"""Hard parameter sharing (HPS): one shared encoder, one head per task.

The CTAL reference's HPS baseline puts a task head straight on the backbone:
for HRNet an HRNet head per task (:class:`ctal_mm.models.heads.HRNetTaskHead`),
for Swin a DeepLab-v3 head per
task. Supervised stage: ``final``. The single-task baseline (STL) uses the
same decoder with one backbone per task, see
:class:`ctal_mm.models.SingleTaskEncoderDecoder`.
"""

from typing import Dict, Mapping, Optional, Sequence, Union

from torch import Tensor

from ctal_mm.registry import MODELS

from .base import BaseMultiTaskDecoder


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
