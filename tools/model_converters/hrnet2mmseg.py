"""Convert HRNet-W18-small-v2 ImageNet weights for our HRNet backbone.

    python tools/model_converters/hrnet2mmseg.py SRC DST

SRC is one of
- timm's ``hrnet_w18_small_v2`` weights (``model.safetensors`` or
  ``pytorch_model.bin`` of the Hugging Face repository
  ``timm/hrnet_w18_small_v2.ms_in1k``, or timm's older ``.pth`` release);
- the official HRNet-Image-Classification file
  ``hrnet_w18_small_model_v2.pth`` (what the CTAL reference loads);
- a checkpoint of the CTAL reference's models, whose backbone is under
  ``backbone.`` (HPS, MTI-Net, M-CTAL), ``backbone.0.`` (CTAL, PAD-Net,
  PAP-Net) or ``backbones.<task>.`` (STL; pick one with ``--task``).

timm kept the official module names, so the first two share one key layout
(stem ``conv1``/``conv2``, ``layer1``, ``transition<i>``, ``stage<i>``) plus
the ImageNet classifier (``incre_modules``, ``downsamp_modules``,
``final_layer``, ``classifier``), which is dropped; they differ in the file
container (safetensors, or a pickle possibly wrapped in ``state_dict`` /
``module.``) and in whether BatchNorm's ``num_batches_tracked`` is stored
(filled with 0 where absent). The converter says which layout it found.
Every key of our backbone (configs/_base_/models/ctal_hrnet18s.py) must be
filled, with its shape: anything else stops with the keys at fault. DST holds
``backbone.<key>`` tensors, the file the configs' ``VerifiedPretrained``
backbone init reads (docs/reproduce.md).
"""

import argparse
import io
import os.path as osp
import re
import sys
from collections import OrderedDict

import torch

from ctal_mm.engine.checkpoint_files import write_checkpoint
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import MODELS
from ctal_mm.utils import register_all_modules
from ctal_mm.utils.compat import UnsafeCheckpointError, safe_torch_load
from ctal_mm.utils.model_weights import (
    CheckpointMismatchError,
    check_state_dict,
    model_state_dict,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BACKBONE_CONFIG = osp.join(
    REPO, 'configs', '_base_', 'models', 'ctal_hrnet18s.py'
)
# the ImageNet classifier on top of the four branches: not part of ours
CLASSIFIER = re.compile(
    r'^(incre_modules|downsamp_modules|final_layer|classifier|head)\.'
)
STEM = ('conv1.weight', 'layer1.0.conv1.weight')


def read_state_dict(path: str) -> 'OrderedDict[str, torch.Tensor]':
    """The tensors of ``path`` (safetensors, or a pickle read safely)."""
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file

        return OrderedDict(load_file(path, device='cpu'))
    loaded = safe_torch_load(path, map_location='cpu')
    if isinstance(loaded, dict) and 'model' in loaded:
        loaded = loaded['model']
    return model_state_dict(loaded)


def detect_layout(state_dict, task=None):
    """``(description, prefix)`` of the backbone keys in ``state_dict``."""
    for prefix, what in (
        ('', 'HRNet ImageNet classifier (timm / HRNet-Image-Classification)'),
        ('backbone.0.', 'CTAL reference checkpoint (CTAL, PAD-Net, PAP-Net)'),
        ('backbone.', 'CTAL reference checkpoint (HPS, MTI-Net, M-CTAL)'),
    ):
        if all(prefix + k in state_dict for k in STEM):
            return what, prefix
    tasks = sorted(
        {
            k.split('.')[1]
            for k in state_dict
            if k.startswith('backbones.') and k.endswith(STEM[0])
        }
    )
    if tasks:
        if task is None:
            task = tasks[0]
        if task not in tasks:
            raise SystemExit(
                f'--task {task!r}: the STL checkpoint has backbones for '
                f'{tasks}.'
            )
        return (
            f'CTAL reference STL checkpoint, the {task} backbone',
            f'backbones.{task}.',
        )
    raise SystemExit(
        'No HRNet backbone found: the file has none of the stem keys '
        f'{STEM} (bare, or under backbone., backbone.0. or '
        f'backbones.<task>.); its first keys are {list(state_dict)[:5]}.'
    )


def convert(state_dict, expected, task=None):
    """``(our backbone state dict, layout description, notes)``."""
    what, prefix = detect_layout(state_dict, task)
    backbone, unknown = OrderedDict(), []
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        key = key[len(prefix) :]
        if prefix == '' and CLASSIFIER.match(key):
            continue
        if key in expected:
            backbone[key] = value
        elif prefix == '':
            unknown.append(key)
    notes = []
    filled = [
        k
        for k in expected
        if k.endswith('num_batches_tracked') and k not in backbone
    ]
    for key in filled:
        backbone[key] = torch.zeros((), dtype=torch.long)
    if filled:
        notes.append(f'{len(filled)} num_batches_tracked filled with 0')
    check_state_dict(
        expected,
        OrderedDict(backbone, **{k: None for k in unknown}),
        what,
        what='the HRNet-W18-small-v2 backbone',
    )
    return backbone, what, notes


def build_backbone():
    register_all_modules()
    cfg = load_config(BACKBONE_CONFIG)
    return MODELS.build(dict(cfg.model.backbone, init_cfg=None))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='timm, official or CTAL-reference file')
    parser.add_argument('dst', help='where to write the converted file')
    parser.add_argument(
        '--task', help='STL checkpoints: whose backbone (default: the first)'
    )
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        raise SystemExit(f'{args.src!r} does not exist.')
    try:
        state_dict = read_state_dict(args.src)
    except (UnsafeCheckpointError, CheckpointMismatchError) as err:
        raise SystemExit(f'{args.src}: {err}') from err
    backbone = build_backbone()
    expected = backbone.state_dict()
    try:
        converted, what, notes = convert(state_dict, expected, args.task)
    except CheckpointMismatchError as err:
        raise SystemExit(f'{args.src}: {err}') from err
    backbone.load_state_dict(converted, strict=True)
    checkpoint = dict(
        meta=dict(converted_from=osp.abspath(args.src), layout=what),
        state_dict=OrderedDict(
            ('backbone.' + k, v) for k, v in converted.items()
        ),
    )
    # through <dst>.tmp and a rename: an interrupted run leaves no half file
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_checkpoint(buffer.getvalue(), args.dst)
    extra = f' ({"; ".join(notes)})' if notes else ''
    print(
        f'{args.src}: {what} -> {args.dst}: {len(converted)} backbone '
        f'tensors, every key of ours filled{extra}.'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
