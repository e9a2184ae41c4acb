"""Map the CTAL reference's state dicts onto ctal_mm's models.

Every key of a reference checkpoint of CTAL, HPS, STL, PAD-Net, PAP-Net,
MTI-Net or M-CTAL corresponds to exactly one key of the ctal_mm model built
from the matching config in ``configs/_base_/models/``. The checkpoint
converter (``tools/model_converters/ctal_official2mm.py``) uses
:func:`convert_reference_state_dict`; the tests map every key of the
reference's listings.

HRNet keys are the same in both code bases. The transformer tree's Swin
backbone is torchvision's ``swin_v2_s``; ours is mmpretrain's
``SwinTransformerV2``: :func:`convert_torchvision_swin_v2` renames its keys
and changes the two layouts that differ (the qkv bias, whose always-zero
key part mmpretrain does not store, and the patch-merging channel order).
"""

import re
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

from torch import Tensor

MODELS = ('ctal', 'hps', 'stl', 'padnet', 'papnet', 'mti_net', 'm_ctal')
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
        return []  # Swin: convert_torchvision_swin_v2, not renaming rules
    if model == 'stl':
        return [_prefix('backbones.{t}.', 'backbone.backbones.{t}.')]
    if model in ('ctal', 'padnet', 'papnet'):  # Sequential(HRNet, fuse)
        return [
            _prefix('backbone.0.', 'backbone.'),
            _prefix('backbone.1.last_layer.0.', 'neck.fuse.conv.'),
            _prefix('backbone.1.last_layer.1.', 'neck.fuse.bn.'),
        ]
    return [_prefix('backbone.', 'backbone.')]


CTAL = [
    _prefix('affinity_learning_module.conv_in.', 'decoder.affinity.conv_in.'),
    _prefix(
        'affinity_learning_module.spatial_att.projection.',
        'decoder.affinity.projection.',
    ),
    _prefix(
        'affinity_learning_module.spatial_att.fusion.',
        'decoder.affinity.fusion.',
    ),
    _prefix(
        'affinity_learning_module.conv_out.', 'decoder.affinity.conv_out.'
    ),
]


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
    elif model in ('ctal', 'padnet', 'papnet'):
        rules += INITIAL_HEADS
        if model == 'ctal':
            rules += CTAL
        elif model == 'padnet':
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


# torchvision's swin_v2_s ``features`` index -> mmpretrain module.
_SWIN_STAGE_BLOCKS = {1: 0, 3: 1, 5: 2, 7: 3}  # features.i -> stages.j
_SWIN_MERGING = {2: 1, 4: 2, 6: 3}  # features.i -> stages.j.downsample
_SWIN_BLOCK_PARTS = {
    'norm1.': 'norm1.',
    'norm2.': 'norm2.',
    'attn.logit_scale': 'attn.w_msa.logit_scale',
    'attn.qkv.weight': 'attn.w_msa.qkv.weight',
    'attn.proj.': 'attn.w_msa.proj.',
    'attn.cpb_mlp.': 'attn.w_msa.cpb_mlp.',
    'mlp.0.': 'ffn.layers.0.0.',
    'mlp.3.': 'ffn.layers.1.',
}
# Buffers both libraries compute from the window size at build time (and
# lay out differently): never converted; mmpretrain's SwinTransformerV2
# drops them from any state dict it loads and keeps its own.
SWIN_RECOMPUTED_BUFFERS = re.compile(
    r'relative_coords_table|relative_position_index'
)


def _merging_weight(weight: Tensor) -> Tensor:
    """Patch-merging reduction weight, torchvision -> mmpretrain layout.

    torchvision concatenates the 2x2 neighbours as ``[x(0,0), x(1,0),
    x(0,1), x(1,1)]`` (row offset first), each ``C`` wide: input index
    ``k * C + c``. mmpretrain unfolds a 2x2 window: input index
    ``c * 4 + 2 * row + col``.
    """
    out_channels, in_channels = weight.shape
    channels = in_channels // 4
    # torchvision's k for (row, col) in mmpretrain's order (0,0),(0,1),(1,0),(1,1)
    torchvision_k = [0, 2, 1, 3]
    w = weight.reshape(out_channels, 4, channels)[:, torchvision_k]
    return w.permute(0, 2, 1).reshape(out_channels, in_channels)


def convert_torchvision_swin_v2(
    state_dict: Mapping[str, Tensor],
) -> Tuple[Dict[str, Tensor], List[str]]:
    """torchvision ``SwinTransformer`` (V2) weights -> mmpretrain's
    ``SwinTransformerV2``.

    Keys are those of torchvision's model (``features.<i>...``, ``norm.*``;
    ``head.*`` is dropped). Two layouts change: the qkv bias (torchvision
    stores ``3C`` values and zeroes the key part in every forward;
    mmpretrain stores ``q_bias`` and ``v_bias`` only, which is why
    mmpretrain's model has ``C`` fewer parameters per block, 9,024 for
    swin_v2_s), and the patch-merging input order (:func:`_merging_weight`).
    The relative-position buffers are left out (see
    ``SWIN_RECOMPUTED_BUFFERS``).

    Returns:
        tuple[dict, list[str]]: mmpretrain state dict, and the keys that
        are not part of a torchvision Swin-V2 backbone.
    """
    converted, unknown = {}, []
    for key, value in state_dict.items():
        if key.startswith('head.') or SWIN_RECOMPUTED_BUFFERS.search(key):
            continue
        if key.startswith('norm.'):
            converted['norm3.' + key[len('norm.') :]] = value
            continue
        match = re.fullmatch(r'features\.(\d+)\.(.+)', key)
        if match is None:
            unknown.append(key)
            continue
        index, rest = int(match[1]), match[2]
        if index == 0:  # Conv2d, Permute, LayerNorm
            parts = {
                '0.': 'patch_embed.projection.',
                '2.': 'patch_embed.norm.',
            }
            new = next(
                (
                    v + rest[len(k) :]
                    for k, v in parts.items()
                    if rest.startswith(k)
                ),
                None,
            )
        elif index in _SWIN_MERGING:
            new = f'stages.{_SWIN_MERGING[index]}.downsample.{rest}'
            if rest == 'reduction.weight':
                value = _merging_weight(value)
        elif index in _SWIN_STAGE_BLOCKS:
            block, _, part = rest.partition('.')
            prefix = f'stages.{_SWIN_STAGE_BLOCKS[index]}.blocks.{block}.'
            if part == 'attn.qkv.bias':
                channels = value.shape[0] // 3
                converted[prefix + 'attn.w_msa.q_bias'] = value[:channels]
                converted[prefix + 'attn.w_msa.v_bias'] = value[2 * channels :]
                continue
            new = next(
                (
                    prefix + v + part[len(k) :]
                    for k, v in _SWIN_BLOCK_PARTS.items()
                    if part.startswith(k)
                ),
                None,
            )
        else:
            new = None
        if new is None:
            unknown.append(key)
        else:
            converted[new] = value
    return converted, unknown


def _reference_swin(
    state_dict: Mapping[str, Tensor],
    model: str,
    task_names: Mapping[str, str] = REFERENCE_TASK_NAMES,
) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
    """Split off and convert the transformer tree's backbone(s).

    The reference wraps torchvision's model as ``Sequential(features, norm,
    permute)``: ``backbone.0.<i>`` is ``features.<i>`` and ``backbone.1`` the
    final norm (STL: ``backbones.<task>.`` per task).

    Returns:
        tuple[dict, dict]: Our backbone keys, and the rest of the reference
        state dict.
    """
    pattern = (
        r'(?P<ours>backbones\.[^.]+\.)(?P<part>[01])\.(?P<rest>.+)'
        if model == 'stl'
        else r'(?P<ours>)backbone\.(?P<part>[01])\.(?P<rest>.+)'
    )
    groups: Dict[str, Dict[str, Tensor]] = {}
    rest = {}
    for key, value in state_dict.items():
        match = re.fullmatch(pattern, key)
        if match is None:
            rest[key] = value
            continue
        torchvision_key = (
            'features.' if match['part'] == '0' else 'norm.'
        ) + match['rest']
        ours = '.'.join(
            task_names.get(part, part) for part in match['ours'].split('.')
        )
        groups.setdefault(ours, {})[torchvision_key] = value
    converted = {}
    for ours, group in groups.items():
        swin, unknown = convert_torchvision_swin_v2(group)
        if unknown:
            raise KeyError(
                f'Reference backbone keys {unknown[:3]} are not those of '
                "torchvision's swin_v2_s: is this a transformer-tree "
                'checkpoint?'
            )
        for key, value in swin.items():
            converted[f'backbone.{ours}{key}'] = value
    return converted, rest


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
        keys no rule maps. Our Swin's relative-position buffers are not
        in it: mmpretrain recomputes them and drops them from any state
        dict it loads.
    """
    rules = reference_key_rules(model, tree)
    converted, unmapped = {}, []
    if tree == 'transformer':
        converted, state_dict = _reference_swin(state_dict, model, task_names)
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
