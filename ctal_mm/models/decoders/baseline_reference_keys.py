"""Map the CTAL reference's baseline state dicts onto ctal_mm's models.

Every key of a reference checkpoint of HPS, STL, PAD-Net, PAP-Net, MTI-Net
or M-CTAL corresponds to exactly one key of the ctal_mm model built from the
matching config in ``configs/_base_/models/``. The checkpoint converter uses
:func:`convert_reference_state_dict`; the tests map every key of the
reference's listings.

Not mapped here: the reference's Swin backbone (torchvision's ``swin_v2_s``
against mmpretrain's ``SwinTransformerV2``: different names and layouts),
whose keys come back in ``unmapped``. HRNet keys are the same in both.
"""

import re
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

from torch import Tensor

MODELS = ('hps', 'stl', 'padnet', 'papnet', 'mti_net', 'm_ctal')
TREES = ('cnn', 'transformer')
# The reference's task names that ctal_mm names differently.
REFERENCE_TASK_NAMES = {'sal': 'saliency'}

Replacement = Union[str, Callable[[re.Match], str]]
Rule = Tuple[str, Replacement]


def _prefix(reference: str, ours: str) -> Rule:
    """Rule renaming the key prefix ``reference`` to ``ours``.

    In both, ``{t}`` stands for a task name and ``{i}`` for a digit; the
    rest of the key is kept. An empty ``rest`` is allowed (parameters that
    are keys of their own, e.g. ``diffusion_module.weights.{t}``).
    """
    pattern = re.escape(reference)
    pattern = pattern.replace(r'\{t\}', r'(?P<t>[^.]+)')
    pattern = pattern.replace(r'\{i\}', r'(?P<i>\d)')
    template = ours.replace('{t}', r'\g<t>').replace('{i}', r'\g<i>')
    return pattern + r'(?P<rest>.*)', template + r'\g<rest>'


def _fpm(reference_suffix: str, ours_suffix: str) -> Rule:
    """Rule for the reference's ``fpm_scale_i``: our ``propagation[i - 1]``.

    ``fpm_scale_i`` carries scale i's task features to scale i - 1.
    """
    pattern, _ = _prefix('fpm_scale_{i}.' + reference_suffix, '')

    def replace(match: re.Match) -> str:
        index = int(match['i']) - 1
        ours = ours_suffix.replace('{t}', match.groupdict().get('t') or '')
        return f'decoder.multi_scale.propagation.{index}.{ours}{match["rest"]}'

    return pattern, replace


def _hrnet_head(ours: str) -> List[Rule]:
    """HRNet head (``last_layer``: conv, BN, ReLU, conv) -> HRNetTaskHead."""
    return [
        _prefix('heads.{t}.last_layer.0.', ours + '.fuse.fuse.conv.'),
        _prefix('heads.{t}.last_layer.1.', ours + '.fuse.fuse.bn.'),
        _prefix('heads.{t}.last_layer.3.', ours + '.conv_out.'),
    ]


def _bottleneck_head(ours: str) -> List[Rule]:
    """Sequential(bottleneck, bottleneck, conv) -> BottleneckTaskHead."""
    return [
        _prefix('heads.{t}.0.', ours + '.layers.0.'),
        _prefix('heads.{t}.1.', ours + '.layers.1.'),
        _prefix('heads.{t}.2.', ours + '.conv_out.'),
    ]


def _deeplab_head(ours: str) -> List[Rule]:
    """torchvision's DeepLabHead -> DeepLabTaskHead."""
    rules = []
    for i in range(4):  # the 1x1 and the three dilated ASPP branches
        rules += [
            _prefix(f'heads.{{t}}.0.convs.{i}.0.', f'{ours}.aspp.{i}.conv.'),
            _prefix(f'heads.{{t}}.0.convs.{i}.1.', f'{ours}.aspp.{i}.bn.'),
        ]
    return rules + [
        _prefix('heads.{t}.0.convs.4.1.', ours + '.image_pool.1.conv.'),
        _prefix('heads.{t}.0.convs.4.2.', ours + '.image_pool.1.bn.'),
        _prefix('heads.{t}.0.project.0.', ours + '.project.0.conv.'),
        _prefix('heads.{t}.0.project.1.', ours + '.project.0.bn.'),
        _prefix('heads.{t}.1.', ours + '.conv.conv.'),
        _prefix('heads.{t}.2.', ours + '.conv.bn.'),
        _prefix('heads.{t}.4.', ours + '.conv_out.'),
    ]


INITIAL_HEADS = [
    _prefix(
        'initial_task_prediction_heads.layers.{t}.',
        'decoder.initial_heads.{t}.layers.',
    ),
    _prefix(
        'initial_task_prediction_heads.conv_out.{t}.',
        'decoder.initial_heads.{t}.conv_out.',
    ),
]

MULTI_SCALE = [
    _prefix('scale_{i}.', 'decoder.multi_scale.scales.{i}.'),
    _fpm('se.{t}.squeeze.0.', 'se.{t}.conv1.conv.'),
    _fpm('se.{t}.squeeze.2.', 'se.{t}.conv2.conv.'),
    _fpm('', ''),
]


def _backbone(model: str, tree: str) -> List[Rule]:
    if tree == 'transformer':
        return []  # Swin: see the module docstring
    if model == 'stl':
        return [_prefix('backbones.{t}.', 'backbone.backbones.{t}.')]
    if model in ('padnet', 'papnet'):  # Sequential(HRNet, fuse)
        return [
            _prefix('backbone.0.', 'backbone.'),
            _prefix('backbone.1.last_layer.0.', 'neck.fuse.conv.'),
            _prefix('backbone.1.last_layer.1.', 'neck.fuse.bn.'),
        ]
    return [_prefix('backbone.', 'backbone.')]


def reference_key_rules(model: str, tree: str = 'cnn') -> List[Rule]:
    """The renaming rules of one reference baseline, tried in order.

    Args:
        model (str): One of ``MODELS`` (the reference's model names).
        tree (str): ``'cnn'`` (HRNet; NYUv2, Cityscapes) or
            ``'transformer'`` (Swin; PASCAL-Context).

    Returns:
        list[tuple[str, str | callable]]: ``(regex, replacement)`` pairs;
        a regex matches a whole reference key.
    """
    if model not in MODELS or tree not in TREES:
        raise ValueError(
            f'No reference key rules for model={model!r}, tree={tree!r}; '
            f'models: {MODELS}, trees: {TREES}.'
        )
    if tree == 'transformer' and model in ('mti_net', 'm_ctal'):
        raise ValueError(
            f'The reference has no {model} for the transformer tree.'
        )
    deeplab = tree == 'transformer'
    rules = _backbone(model, tree)
    if model in ('hps', 'stl'):
        heads = 'decoder.heads.{t}'
        rules += _deeplab_head(heads) if deeplab else _hrnet_head(heads)
    elif model in ('padnet', 'papnet'):
        rules += INITIAL_HEADS
        if model == 'padnet':
            rules.append(
                _prefix('multi_modal_distillation.', 'decoder.distillation.')
            )
        else:
            rules += [
                _prefix(
                    'affinity_learning_module.conv.{t}.',
                    'decoder.affinity_convs.{t}.',
                ),
                _prefix(
                    'diffusion_module.weights.{t}',
                    'decoder.diffusion.weights.{t}',
                ),
            ]
        heads = 'decoder.final_heads.{t}'
        rules += _deeplab_head(heads) if deeplab else _bottleneck_head(heads)
    elif model == 'mti_net':
        rules += MULTI_SCALE
        rules.append(
            _prefix('distillation_scale_{i}.', 'decoder.distillation.{i}.')
        )
        rules += _hrnet_head('decoder.heads.{t}')
    else:  # m_ctal
        rules += MULTI_SCALE
        rules += [
            _prefix(
                'scale_fusion.{t}.last_layer.0.',
                'decoder.scale_fusion.{t}.fuse.conv.',
            ),
            _prefix(
                'scale_fusion.{t}.last_layer.1.',
                'decoder.scale_fusion.{t}.fuse.bn.',
            ),
            _prefix('ctal.conv_in.', 'decoder.affinity.conv_in.'),
            _prefix(
                'ctal.spatial_att.projection.', 'decoder.affinity.projection.'
            ),
            _prefix(
                'ctal.spatial_att.task_fusion.', 'decoder.affinity.fusion.'
            ),
            _prefix('ctal.conv_out.', 'decoder.affinity.conv_out.'),
        ]
        rules += _bottleneck_head('decoder.final_heads.{t}')
    return rules


def map_reference_key(
    key: str,
    rules: List[Rule],
    task_names: Mapping[str, str] = REFERENCE_TASK_NAMES,
) -> Optional[str]:
    """Our name for one reference key, or None if no rule matches."""
    for pattern, replacement in rules:
        match = re.fullmatch(pattern, key)
        if match is None:
            continue
        ours = (
            replacement(match)
            if callable(replacement)
            else match.expand(replacement)
        )
        # rename tasks wherever they appear as a whole key component
        return '.'.join(task_names.get(part, part) for part in ours.split('.'))
    return None


def convert_reference_state_dict(
    state_dict: Mapping[str, Tensor],
    model: str,
    tree: str = 'cnn',
    target: Optional[Mapping[str, Tensor]] = None,
    task_names: Mapping[str, str] = REFERENCE_TASK_NAMES,
) -> Tuple[Dict[str, Tensor], List[str]]:
    """Rename a reference baseline state dict to ctal_mm's keys.

    Args:
        state_dict (Mapping[str, Tensor]): The reference checkpoint.
        model (str): One of ``MODELS``.
        tree (str): ``'cnn'`` or ``'transformer'``.
        target (Mapping[str, Tensor], optional): Our model's state dict;
            when given, tensors are reshaped to our shapes where only the
            layout differs (MTI-Net's squeeze-and-excitation: the
            reference's ``nn.Linear`` weights become 1x1 conv weights) and a
            size mismatch raises.
        task_names (Mapping[str, str]): Reference task names to ours.

    Returns:
        tuple[dict, list[str]]: The converted state dict, and the reference
        keys no rule maps (the Swin backbone of the transformer tree).
    """
    rules = reference_key_rules(model, tree)
    converted, unmapped = {}, []
    for key, value in state_dict.items():
        ours = map_reference_key(key, rules, task_names)
        if ours is None:
            unmapped.append(key)
            continue
        if target is not None:
            if ours not in target:
                raise KeyError(
                    f'Reference key {key!r} maps to {ours!r}, which the '
                    f'ctal_mm model lacks: is it built from the {model} '
                    'config with the same tasks?'
                )
            shape = target[ours].shape
            if value.shape != shape:
                if value.numel() != target[ours].numel():
                    raise ValueError(
                        f'Reference {key!r} has shape {tuple(value.shape)} '
                        f'but {ours!r} has {tuple(shape)}: built for other '
                        'channels or input size?'
                    )
                value = value.reshape(shape)
        converted[ours] = value
    return converted, unmapped
