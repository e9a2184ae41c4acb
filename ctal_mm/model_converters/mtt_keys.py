"""Map the state dicts of the official InvPT code onto ctal_mm's models.

The official code (``prismformore/Multi-Task-Transformer``, InvPT/) saves
``{'model': {'module.' + key: tensor}}`` (or the bare state dict) of a
``TransformerNet``: ``backbone.*`` (timm's ViT layout, the same keys as
:class:`ctal_mm.models.backbones.PatchViT`), ``multi_task_decoder.*`` (our
``decoder.*``) and ``heads.<task>.linear_pred.*`` (our
``decoder.heads.<task>.*``). Inside the decoder three layers are named
differently: its conv blocks' ``bn1`` and ``mt_proj``'s ``0`` / ``1`` are
our ``bn`` and ``conv`` / ``bn``; PASCAL's saliency is ``sal`` there.

Per-task modules held in lists (the UpEmbeds, the query projections, the
channel reductions) and the cross-task LayerNorms follow the official task
order, which the yml's ``task_dictionary`` does not set: it is the fixed
order of :data:`OFFICIAL_TASK_ORDER`. A model whose tasks run in another
order would need those tensors permuted; the converter refuses it instead,
naming the order to use (the decoder's ``task_order``).
"""

import re
from typing import Dict, List, Mapping, Sequence, Tuple

from torch import Tensor

from .reference_keys import REFERENCE_TASK_NAMES

# the order in which the official config parser adds the tasks it includes
OFFICIAL_TASK_ORDER = (
    'semseg',
    'depth',
    'human_parts',
    'saliency',
    'normals',
    'edge',
)

_INVPT_RULES: List[Tuple[str, str]] = [
    (r'^heads\.([^.]+)\.linear_pred\.', r'decoder.heads.\1.'),
    (r'^multi_task_decoder\.', 'decoder.'),
    (r'^(decoder\.preliminary_decoder\.[^.]+\.\d)\.bn1\.', r'\1.bn.'),
    (r'^(decoder\.invpt\.mt_proj\.[^.]+)\.0\.', r'\1.conv.'),
    (r'^(decoder\.invpt\.mt_proj\.[^.]+)\.1\.', r'\1.bn.'),
]


def check_official_task_order(tasks: Sequence[str], method: str) -> None:
    """Raise ``ValueError`` unless ``tasks`` run in the official order."""
    unknown = [t for t in tasks if t not in OFFICIAL_TASK_ORDER]
    if unknown:
        raise ValueError(
            f'The official {method} code has no task {unknown}; its tasks '
            f'are {OFFICIAL_TASK_ORDER}.'
        )
    expected = [t for t in OFFICIAL_TASK_ORDER if t in tasks]
    if list(tasks) != expected:
        raise ValueError(
            f'The model predicts {list(tasks)}, the official {method} code '
            f'orders them {expected} (its per-task lists and cross-task '
            "norms follow that order): set the decoder's task_order "
            f'to {tuple(expected)}.'
        )


def _rename_tasks(key: str) -> str:
    parts = key.split('.')
    return '.'.join(REFERENCE_TASK_NAMES.get(p, p) for p in parts)


def map_invpt_key(key: str) -> str:
    """Our key for one official InvPT key (without ``module.``)."""
    key = _rename_tasks(key)
    for pattern, replacement in _INVPT_RULES:
        key = re.sub(pattern, replacement, key)
    return key


KEY_MAPPERS = {'invpt': map_invpt_key}


def convert_mtt_state_dict(
    state_dict: Mapping[str, Tensor],
    method: str,
    tasks: Sequence[str],
) -> Dict[str, Tensor]:
    """An official state dict of ``method`` (read by
    :func:`ctal_mm.model_converters.official_files.read_official_state_dict`:
    no ``module.`` prefix) with our keys.

    ``tasks``: the decoder's task names in its order (``decoder.task_names``,
    checked against the official order). Keys are renamed only; the caller compares the result
    with the model (:func:`ctal_mm.utils.check_state_dict`).
    """
    if method not in KEY_MAPPERS:
        raise ValueError(
            f'method={method!r}; the converter knows {sorted(KEY_MAPPERS)}.'
        )
    check_official_task_order(tasks, method)
    mapper = KEY_MAPPERS[method]
    converted = {}
    for key, value in state_dict.items():
        ours = mapper(key)
        if ours in converted:
            raise ValueError(
                f'Two keys of the official state dict map to {ours!r}.'
            )
        converted[ours] = value
    return converted
