"""MultiTaskEncoderDecoder: backbone -> neck -> multitask decoder, supervised per task and stage."""

import logging
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import Tensor, nn
from torch.func import functional_call

from ctal_mm.registry import MODELS
from ctal_mm.structures import MultiTaskDataSample, get_task_kind, task_kind

from .activation_checkpoint import checkpointed
from .layer_init import check_layer_init, reset_to_pytorch_defaults
from .losses.loss_keys import format_loss_dict
from .mtl import JacobianDescent
from .task_spec import parse_task_spec


def _finest_size(feats) -> Tuple[int, int]:
    """(h, w) of the largest map of a backbone or neck output (a map, or a
    sequence or dict of them)."""
    if isinstance(feats, Tensor):
        return tuple(int(s) for s in feats.shape[-2:])
    maps = feats.values() if isinstance(feats, Mapping) else feats
    return max((_finest_size(m) for m in maps), key=lambda hw: hw[0] * hw[1])


def _stride(
    size: Sequence[int], feature_size: Sequence[int]
) -> Tuple[int, int]:
    # round: a backbone that pads or floors (HRNet's stride-2 convs on odd
    # sizes) gives maps one position larger or smaller than size / stride
    return tuple(
        max(1, round(int(s) / int(f))) for s, f in zip(size, feature_size)
    )


@MODELS.register_module()
class MultiTaskEncoderDecoder(BaseModel):
    """A dense multitask model assembled from config.

    ``decoder(features)`` returns ``{stage: {task: logits}}`` (e.g. ``initial`` and ``final``);
    every stage is upsampled to the input size and supervised with the task's loss; the
    loss weighting combines the terms, keyed ``(stage, task)`` (and ``ExtraTerm`` for its
    regularisers, :mod:`ctal_mm.models.losses.loss_keys`), and they come back as
    ``'<stage>.<task>.loss'`` (``'<task>.uncertainty_reg.loss'``, ...), already weighted.
    ``predict`` uses the ``final`` stage, removes the padding the data preprocessor added,
    resizes to each image's original size and stores ``pred_<task>`` in ctal_mm's
    convention.

    Args:
        backbone: backbone config (e.g. mmseg's HRNet or mmpretrain's SwinTransformerV2).
        decoder: decoder config; it receives ``tasks=`` too.
        tasks: ``{task: dict(kind, channels, loss, weight)}``.
        neck: optional neck config.
        loss_weighting: strategy config (FixedWeighting, UncertaintyWeighting, DWAWeighting).
        aggregator: a gradient-level multitask method, a torchjd aggregator by its
            class name (``dict(type='UPGrad')``; ``gramian=True`` in it uses torchjd's
            autogram Gramian path): applied to the shared parameters, with
            ``optim_wrapper.type='JacobianOptimWrapper'`` (docs/mtl_methods.md).
        shared_modules: names of the submodules whose parameters the aggregator
            combines (default ``('backbone', 'neck')``; e.g. add
            ``'decoder.affinity'`` for CTAL's cross-task module).
        data_preprocessor: MultiTaskDataPreProcessor config.
        align_corners: of the bilinear upsampling of the outputs.
        with_cp: activation checkpointing of the backbone and neck together:
            keep only the images for backward and run both again there
            (same results, less memory, a little more time). The decoder
            has its own ``with_cp``. For a deep backbone (Swin) its own
            per-block ``backbone.with_cp`` holds less at once.
        layer_init: how the layers outside the backbone start
            (:mod:`ctal_mm.models.layer_init`): ``'kaiming'`` (mmcv
            ConvModule's Kaiming-normal, the default here) or
            ``'reference'`` (PyTorch's defaults, as the CTAL reference; the
            reference-reproducing configs set it).
    """

    def __init__(
        self,
        backbone: dict,
        decoder: dict,
        tasks: Optional[Mapping[str, Mapping]] = None,
        neck: Optional[dict] = None,
        loss_weighting: dict = dict(type='FixedWeighting'),
        aggregator: Optional[dict] = None,
        shared_modules: Optional[List[str]] = None,
        data_preprocessor: Optional[dict] = None,
        align_corners: bool = False,
        with_cp: bool = False,
        layer_init: str = 'kaiming',
        init_cfg=None,
    ):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg
        )
        self.layer_init = check_layer_init(layer_init)
        self.tasks = parse_task_spec(tasks)
        # task -> training batches without a labelled pixel (see _count_unlabelled)
        self.unlabelled_batches: Dict[str, int] = {}
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.decoder = MODELS.build(dict(decoder, tasks=dict(self.tasks)))
        self.losses = nn.ModuleDict(
            {
                name: MODELS.build(cfg['loss'])
                for name, cfg in self.tasks.items()
            }
        )
        self.loss_weighting = MODELS.build(
            dict(loss_weighting, tasks=list(self.tasks))
        )
        if hasattr(self.loss_weighting, 'bind_model'):
            self.loss_weighting.bind_model(self)  # GradNorm finds its layer
        self.align_corners = align_corners
        self.with_cp = with_cp
        self.jacobian_descent = None
        if aggregator is not None:
            self.jacobian_descent = JacobianDescent(
                aggregator, list(self.tasks), shared_modules
            )
            self.jacobian_descent.split_parameters(self)  # names checked now
        elif shared_modules is not None:
            raise ValueError(
                'model.shared_modules is set but model.aggregator is not: '
                "shared modules only matter to an aggregator (dict(type='UPGrad'), say)."
            )
        # (sy, sx) input size / finest backbone (+ neck) map, once measured
        self._feature_stride: Optional[Tuple[int, int]] = None

    # ----------------------------------------------------------------- init
    def pretrained_modules(self) -> List[nn.Module]:
        """The modules ``layer_init`` leaves alone: the backbone."""
        return [self.backbone]

    def init_weights(self):
        super().init_weights()
        if self.layer_init == 'reference':
            reset_to_pytorch_defaults(self, skip=self.pretrained_modules())

    # ----------------------------------------------------------------- features
    def extract_feat(self, inputs: Tensor):
        if self.with_cp:
            return checkpointed(self._features, inputs)
        return self._features(inputs)

    def _features(self, inputs: Tensor):
        feats = self.backbone(inputs)
        return self.neck(feats) if self.neck is not None else feats

    # ----------------------------------------------------------------- input size
    def fixed_input_size(self) -> Optional[Tuple[int, int]]:
        """The one (h, w) this model accepts as input, or None if it accepts any.

        A decoder with a module built for one feature size (CTAL's affinity:
        its fusion conv has one kernel per position) fixes it: that feature
        size times :meth:`feature_stride`. Test-time augmentation, the config
        checks, the inference API and the tools all ask this.
        """
        feature_size = self.decoder.fixed_feature_size()
        if feature_size is None:
            return None
        sy, sx = self.feature_stride()
        return feature_size[0] * sy, feature_size[1] * sx

    def feature_stride(self) -> Tuple[int, int]:
        """(sy, sx): the input size over the size of the finest map the
        backbone (and neck) give, from the first forward, or before any from
        a probe on the meta device (shapes only, no arithmetic)."""
        if self._feature_stride is None:
            self._feature_stride = self._probe_feature_stride()
        return self._feature_stride

    def _probe_feature_stride(self) -> Tuple[int, int]:
        # large enough for any backbone's smallest stage (Swin's windows)
        # and for round() to find strides that do not divide it (ViT-14)
        size = (512, 512)
        mean = getattr(self.data_preprocessor, 'mean', None)
        channels = 3 if mean is None else mean.numel()
        # in the parameters' dtype: a model converted with .double() takes double inputs
        dtype = next(self.backbone.parameters()).dtype
        inputs = torch.empty(1, channels, *size, device='meta', dtype=dtype)

        def meta_state(module):
            tensors = list(module.named_parameters())
            tensors += list(module.named_buffers())
            return {
                name: torch.empty_like(t, device='meta') for name, t in tensors
            }

        with torch.no_grad():
            feats = functional_call(
                self.backbone, meta_state(self.backbone), (inputs,)
            )
            if self.neck is not None:
                feats = functional_call(
                    self.neck, meta_state(self.neck), (feats,)
                )
        return _stride(size, _finest_size(feats))

    def _check_input_size(self, inputs: Tensor, feats) -> None:
        """Raise, naming the input size the model needs, when the features do
        not have the size the decoder is built for; record the stride."""
        feature_size = self.decoder.fixed_feature_size()
        if feature_size is None:
            return
        finest = _finest_size(feats)
        stride = _stride(inputs.shape[-2:], finest)
        if self._feature_stride is None:
            self._feature_stride = stride
        if finest == feature_size:
            return
        (h, w), (sy, sx) = feature_size, stride
        key = f'model.decoder.{self.decoder.fixed_size_module}.feature_size'
        raise ValueError(
            f'{type(self.decoder).__name__} was built for {h}x{w} features '
            f'({key}={feature_size}; its {self.decoder.fixed_size_module} '
            'module accepts this size only) but got '
            f'{finest[0]}x{finest[1]} features from '
            f'{inputs.shape[-2]}x{inputs.shape[-1]} inputs (stride {sy}x{sx}): '
            f'the input must be {h * sy}x{w * sx}. Set {key} to input size / '
            f"stride, or make the dataset pipeline's crop/pad size (and the "
            "data_preprocessor's size) give this input size."
        )

    def decode(self, inputs: Tensor) -> Dict[str, Dict[str, Tensor]]:
        """Logits per stage and task, at the input size."""
        feats = self.extract_feat(inputs)
        self._check_input_size(inputs, feats)
        if self.jacobian_descent is not None:
            # JacobianOptimWrapper splits the backward pass here: the decoder once per
            # task (to these features), the backbone and neck once, batched over tasks
            self.jacobian_descent.record_features(
                feats, [self.backbone, self.neck]
            )
        outputs = self.decoder(feats)
        size = inputs.shape[-2:]
        return {
            stage: {
                task: self._resize(logits, size)
                for task, logits in preds.items()
            }
            for stage, preds in outputs.items()
        }

    def _resize(self, x: Tensor, size) -> Tensor:
        if x.shape[-2:] == tuple(size):
            return x
        return F.interpolate(
            x, size=size, mode='bilinear', align_corners=self.align_corners
        )

    # ----------------------------------------------------------------- modes
    def forward(
        self,
        inputs: Tensor,
        data_samples: Optional[List[MultiTaskDataSample]] = None,
        mode: str = 'tensor',
    ):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.decode(inputs)
        raise ValueError(
            f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}."
        )

    def loss(
        self, inputs: Tensor, data_samples: List[MultiTaskDataSample]
    ) -> Dict[str, Tensor]:
        gts = {
            task: self._stack_gt(task, data_samples, inputs)
            for task in self.tasks
        }
        self._count_unlabelled(gts, data_samples)
        outputs = self.decode(inputs)
        raw = {}
        for stage, preds in outputs.items():
            for task, logits in preds.items():
                raw[stage, task] = self.losses[task](logits, gts[task])
        weights = {task: cfg['weight'] for task, cfg in self.tasks.items()}
        weighted = self.loss_weighting(raw, weights)
        # string keys from here on: mmengine's parse_losses and the log need
        # them, and sum only keys containing 'loss' into the total
        return format_loss_dict(weighted)

    def _count_unlabelled(self, gts: Dict[str, Tensor], data_samples) -> None:
        """Count, per task, the batches without one labelled pixel (their loss is 0, the
        task learns nothing from them); warn at the first and at 10, 100, 1000... One
        transfer to the host per batch, before the forward is queued."""
        tasks = list(gts)
        kinds = {t: self.tasks[t]['kind'] for t in tasks}
        labelled = torch.stack(
            [
                (gts[t] != get_task_kind(t, kinds).ignore_value).any()
                for t in tasks
            ]
        ).cpu()
        counts = self.unlabelled_batches
        for task, any_label in zip(tasks, labelled.tolist()):
            if any_label:
                continue
            counts[task] = count = counts.get(task, 0) + 1
            if count == 1:
                files = [
                    str(s.metainfo.get('img_path', f'sample {i}'))
                    for i, s in enumerate(data_samples)
                ]
                shown = ', '.join(files[:4]) + (
                    f' and {len(files) - 4} more' if len(files) > 4 else ''
                )
                print_log(
                    f"Task '{task}': no pixel of this batch is labelled ({shown}); its "
                    f'loss is 0 and the task learns nothing from it. Check the files '
                    '(and crops that may cut every label away); further such batches '
                    'are counted (model.unlabelled_batches).',
                    logger='current',
                    level=logging.WARNING,
                )
            elif math.log10(count).is_integer():
                print_log(
                    f"Task '{task}': {count} batches so far had no labelled pixel.",
                    logger='current',
                    level=logging.WARNING,
                )

    def parse_losses(self, losses):
        if (
            self.jacobian_descent is not None
            and self.training
            and not self.jacobian_descent.step_open
        ):
            raise TypeError(
                'model.aggregator is set, so the optimiser wrapper must be '
                "optim_wrapper=dict(type='JacobianOptimWrapper', ...) (it computes "
                'the per-task gradients); the plain sum would ignore the aggregator.'
            )
        return super().parse_losses(losses)

    def _stack_gt(self, task: str, data_samples, inputs: Tensor) -> Tensor:
        missing = [i for i, s in enumerate(data_samples) if not s.has_gt(task)]
        if missing:
            raise KeyError(
                f"The model predicts task '{task}' but the data samples {missing} of this batch "
                f'have no gt_{task} (they have {data_samples[missing[0]].gt_tasks}). Add '
                f"'{task}' to the dataset's tasks, or remove it from model.tasks."
            )
        gt = torch.stack([s.gt(task) for s in data_samples]).to(inputs.device)
        if gt.shape[-2:] != inputs.shape[-2:]:
            raise ValueError(
                f'gt_{task} is {tuple(gt.shape[-2:])} but the batch inputs are '
                f'{tuple(inputs.shape[-2:])}: the pipeline must crop/pad every task map with the '
                'image (use the MultiTask* transforms and the MultiTaskDataPreProcessor).'
            )
        return gt

    def predict(
        self,
        inputs: Tensor,
        data_samples: Optional[List[MultiTaskDataSample]] = None,
    ) -> List[MultiTaskDataSample]:
        final = self.decode(inputs)['final']
        if data_samples is None:
            data_samples = [
                MultiTaskDataSample(
                    metainfo=dict(
                        ori_shape=inputs.shape[-2:],
                        img_shape=inputs.shape[-2:],
                    )
                )
                for _ in range(inputs.shape[0])
            ]
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            left, right, top, bottom = meta.get('padding_size', (0, 0, 0, 0))
            H, W = inputs.shape[-2:]
            ori_shape = tuple(meta.get('ori_shape', (H, W)))[:2]
            for task, logits in final.items():
                x = logits[i : i + 1, :, top : H - bottom, left : W - right]
                x = self._resize(x, ori_shape)
                kind = task_kind(self.tasks[task]['kind'])
                sample.set_pred(task, kind.finalize(x)[0])
        return data_samples
