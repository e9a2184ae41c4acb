"""Single-task learning (STL): one whole network per task, trained together.

The reference point of the multitask gain delta_m. Each task has its own
backbone (and neck) and its own head; nothing is shared, so training them in
one run with one optimiser is the same as training them separately with the
same schedule (the reference does the same). The heads are an
:class:`~ctal_mm.models.decoders.hps.HPSDecoder`, which predicts each task
from that task's own features.
"""

from typing import Dict, List, Mapping, Optional, Sequence

from mmengine.model import BaseModule
from torch import Tensor, nn

from ctal_mm.registry import MODELS

from .multitask_model import MultiTaskEncoderDecoder


@MODELS.register_module()
class PerTaskEncoders(BaseModule):
    """One backbone (and optional neck) per task, all fed the same image.

    Args:
        tasks (Sequence[str]): Task names.
        backbone (dict): Backbone config, built once per task.
        neck (dict, optional): Neck config, built once per task.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        backbone: dict,
        neck: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        self.task_names = list(tasks)
        self.backbones = nn.ModuleDict(
            {task: MODELS.build(backbone) for task in self.task_names}
        )
        self.necks = None
        if neck is not None:
            self.necks = nn.ModuleDict(
                {task: MODELS.build(neck) for task in self.task_names}
            )

    def forward(self, inputs: Tensor) -> Dict[str, object]:
        """Return ``{task: that task's backbone (and neck) output}``."""
        features = {}
        for task in self.task_names:
            feats = self.backbones[task](inputs)
            if self.necks is not None:
                feats = self.necks[task](feats)
            features[task] = feats
        return features


@MODELS.register_module()
class SingleTaskEncoderDecoder(MultiTaskEncoderDecoder):
    """STL: a :class:`MultiTaskEncoderDecoder` with one encoder per task.

    Takes the same arguments as :class:`MultiTaskEncoderDecoder`; the
    backbone (and neck) config is built once per task and ``decoder`` must
    accept ``{task: features}`` (e.g. ``HPSDecoder``). A multitask config
    becomes its single-task baseline by ``model.type`` alone.

    Args:
        backbone (dict): Backbone config, built once per task.
        decoder (dict): Decoder config (``HPSDecoder``).
        tasks (dict): ``{task: dict(kind, channels, loss, weight)}``.
        neck (dict, optional): Neck config, built once per task.
        **kwargs: The other :class:`MultiTaskEncoderDecoder` arguments.
    """

    def __init__(
        self,
        backbone: dict,
        decoder: dict,
        tasks: Mapping[str, Mapping],
        neck: Optional[dict] = None,
        **kwargs,
    ):
        encoders = dict(
            type=PerTaskEncoders,
            tasks=list(tasks),
            backbone=backbone,
            neck=neck,
        )
        super().__init__(
            backbone=encoders,
            decoder=decoder,
            tasks=tasks,
            neck=None,
            **kwargs,
        )

    def pretrained_modules(self) -> List[nn.Module]:
        """Each task's backbone; its neck starts as ``layer_init`` says."""
        return list(self.backbone.backbones.values())
