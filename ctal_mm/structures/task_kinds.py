"""The task kinds ctal_mm knows and the data conventions each one follows everywhere.

A *task* is a named output of the model (``semseg``, ``depth``, ``human_parts``...);
its *kind* says how its maps are stored, padded, resized, flipped, predicted and scored.
Inside ctal_mm, whatever the file format on disk, ground truth follows one convention per kind:

==============  ===========================  ============  ====================================
kind            ground truth (C x H x W)     no-label      prediction (``pred_<task>``)
==============  ===========================  ============  ====================================
segmentation    int64 class ids, C=1         255           int64 class ids, C=1
depth           float32 metres, C=1          0             float32 metres, C=1
normals         float32 unit vectors, C=3    all zeros     float32 unit vectors, C=3
edge            int64 {0, 1}, C=1            255           float32 edge probability, C=1
saliency        int64 {0, 1}, C=1            255           float32 foreground probability, C=1
==============  ===========================  ============  ====================================

In the data pipeline (before packing) the same maps are numpy arrays H x W (C=1) or H x W x C.
"""

from dataclasses import dataclass
from typing import Dict, Mapping, Optional

IGNORE_INDEX = 255


@dataclass(frozen=True)
class TaskKind:
    """How the maps of one kind of task behave.

    Attributes:
        name: the kind's name.
        channels: channels of the ground-truth map (1 or 3).
        ignore_value: the value that marks "no label" in the ground truth, used for padding and
            for invalid pixels (depth 0 and all-zero normals are what the source datasets use).
        is_label: integer class ids (resized with nearest neighbour, never averaged).
        flip_negates_x: a horizontal flip must negate channel 0 (the x of a normal vector).
    """

    name: str
    channels: int
    ignore_value: float
    is_label: bool
    flip_negates_x: bool = False


TASK_KINDS: Dict[str, TaskKind] = {
    'segmentation': TaskKind('segmentation', 1, IGNORE_INDEX, is_label=True),
    'depth': TaskKind('depth', 1, 0.0, is_label=False),
    'normals': TaskKind(
        'normals', 3, 0.0, is_label=False, flip_negates_x=True
    ),
    'edge': TaskKind('edge', 1, IGNORE_INDEX, is_label=True),
    'saliency': TaskKind('saliency', 1, IGNORE_INDEX, is_label=True),
}

# The kind of each task name the reference datasets use, so configs may omit ``kind`` for them.
DEFAULT_TASK_KIND: Dict[str, str] = {
    'semseg': 'segmentation',
    'human_parts': 'segmentation',
    'depth': 'depth',
    'normals': 'normals',
    'edge': 'edge',
    'saliency': 'saliency',
}


def get_task_kind(
    task: str, kinds: Optional[Mapping[str, str]] = None
) -> TaskKind:
    """The :class:`TaskKind` of ``task``: from ``kinds`` (task -> kind name) or the defaults."""
    kind_name = (kinds or {}).get(task, DEFAULT_TASK_KIND.get(task))
    if kind_name is None:
        raise KeyError(
            f'Task {task!r} has no kind: name it in the task spec, e.g. '
            f"dict({task}=dict(kind='segmentation', ...)). Known kinds: {sorted(TASK_KINDS)}."
        )
    if kind_name not in TASK_KINDS:
        raise KeyError(
            f'Task {task!r} has unknown kind {kind_name!r}; known kinds: '
            f'{sorted(TASK_KINDS)}.'
        )
    return TASK_KINDS[kind_name]
