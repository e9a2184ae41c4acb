"""The task kinds: everything a kind of task means, in one :class:`TaskKind` entry per kind.

A *task* is a named output of the model (``semseg``, ``depth``, ``human_parts``...);
its *kind* says how its maps are stored, padded, resized, flipped, predicted, merged over
test-time views, written to files, drawn and scored. Inside ctal_mm, whatever the file format on
disk, ground truth follows one convention per kind:

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

How the pieces fit (the design):

* Every layer asks the task's :class:`TaskKind` and never compares a kind's or a task's name:
  transforms read ``is_label`` / ``is_unit_vector`` / ``is_distance`` / ``flip_negates_x`` /
  ``ignore_value``, the model ``finalize`` and ``default_loss``, test-time augmentation
  ``tta_average`` / ``tta_merge``, ``ctal_mm.testing`` ``random_gt``, the config checks
  ``head_channels`` and ``has_classes``.
* What a kind does to tensors (finalisation, TTA merging, random ground truth) is a few lines
  of torch and lives here as functions. What needs heavy or higher-level code is *named*, and
  the named thing is registered in its own layer, so this module imports nothing of ctal_mm and
  every layer can import it without a cycle: ``drawer`` names a drawer of
  :func:`ctal_mm.visualization.register_task_drawer` (cv2, matplotlib),
  ``prediction_format`` a file format of
  :mod:`ctal_mm.visualization.prediction_files` (cv2), ``default_loss`` is the
  config of a registered loss.
* Losses and metrics say which kinds they accept in their class attribute ``ACCEPTED_KINDS``;
  the config checks read it through the registries.

Adding a kind is one :func:`register_task_kind` call plus, if no registered one fits, a loss
and a metric (and a drawer): see docs/add_new_task.md, "Add a task kind".
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE_INDEX = 255

# ----------------------------------------------------------------------- tensor functions


def unit_vectors(x: Tensor, eps: float = 1e-12) -> Tensor:
    """``x / max(|x|, eps)`` over dim 1, as ``F.normalize(x, dim=1)``, in at
    least float32 (as autocast runs ``F.normalize``).

    Written as a sum of squares because torch's norm over dim 1 of a
    B x 3 x H x W tensor is about 50x slower on CPU (14 ms against 0.3 ms at
    2 x 3 x 288 x 384). Clamping the squared norm keeps zero vectors' gradient
    finite, as ``F.normalize`` does.
    """
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    squared = x.square().sum(1, keepdim=True)
    return x * squared.clamp_min(eps * eps).rsqrt()


def identity(x: Tensor) -> Tensor:
    """The map as it is (a regression output is its own prediction)."""
    return x


def class_ids(x: Tensor) -> Tensor:
    """B x K x H x W class scores -> B x 1 x H x W ids of the best class."""
    return x.argmax(dim=1, keepdim=True)


def class_probabilities(logits: Tensor) -> Tensor:
    """B x K x H x W logits -> their softmax over the classes."""
    return logits.softmax(dim=1)


def foreground_probability(logits: Tensor) -> Tensor:
    """Two-class logits (the reference) -> foreground probability; one channel -> sigmoid."""
    if logits.shape[1] == 2:
        return logits.softmax(dim=1)[:, 1:]
    return torch.sigmoid(logits)


def random_class_ids(size, channels: int, g: torch.Generator) -> Tensor:
    """1 x H x W ids in [0, channels) with an ignored band (255) in the first two rows."""
    gt = torch.randint(0, channels, (1, *size), generator=g)
    gt[:, :2] = IGNORE_INDEX
    return gt


def random_depth(size, channels: int, g: torch.Generator) -> Tensor:
    """1 x H x W depths in [0.5, 1.5) m, the first three columns invalid (0)."""
    gt = torch.rand(1, *size, generator=g) + 0.5
    gt[:, :, :3] = 0
    return gt


def random_unit_vectors(size, channels: int, g: torch.Generator) -> Tensor:
    """3 x H x W random unit vectors, the last two rows invalid (all zero)."""
    gt = F.normalize(torch.randn(3, *size, generator=g), dim=0)
    gt[:, -2:] = 0
    return gt


def random_binary(size, channels: int, g: torch.Generator) -> Tensor:
    """1 x H x W {0, 1} with an ignored band (255) in the last two rows."""
    gt = torch.randint(0, 2, (1, *size), generator=g)
    gt[:, -2:] = IGNORE_INDEX
    return gt


RandomGroundTruth = Callable[[Tuple[int, int], int, torch.Generator], Tensor]

# ----------------------------------------------------------------------- the kind


@dataclass(frozen=True)
class TaskKind:
    """Everything about one kind of task.

    Attributes:
        name: the kind's name (``model.tasks.<task>.kind``, a dataset's ``task_kinds``).
        channels: channels of the ground-truth map (1 or 3).
        ignore_value: the value that marks "no label" in the ground truth, used for padding and
            for invalid pixels (depth 0 and all-zero normals are what the source datasets use).
        is_label: integer labels: resized with nearest neighbour, never averaged.
        flip_negates_x: a horizontal flip must negate channel 0 (the x of a normal vector).
        is_unit_vector: continuous unit vectors: resized bilinearly and renormalised (or by
            nearest neighbour with ``normals_interpolation='nearest'``).
        is_distance: distances from the camera: a resize by s divides them by s when the
            transform's ``depth_mode='divide'`` (an image enlarged s times looks like a camera
            s times closer).
        has_classes: the head predicts one channel per class of the dataset (its class names
            and palette are in the dataset meta, see :mod:`ctal_mm.structures.dataset_meta`);
            ``cat_max_ratio`` of random crops looks at such a map.
        head_channels: the output channels a head of this kind may have; None: any (with
            ``has_classes``, the dataset's class count).
        default_loss: the loss config a task of this kind gets when its spec names none; None:
            every task of this kind must name its loss.
        finalize: B x C x H x W logits -> the prediction (``pred_<task>``).
        tta_average: B x C x H x W logits -> what test-time augmentation averages over the
            views; None: the prediction itself.
        tta_merge: B x C x H x W mean over the views -> the prediction.
        random_gt: ``(size, channels, generator) -> C x H x W`` random ground truth of the
            kind's value range with a region losses and metrics must skip (``ctal_mm.testing``);
            ``channels`` is the task's head channels.
        drawer: the name of its drawer (``register_task_drawer``); None: the kind's name.
        prediction_format: the name of its file format in
            :mod:`ctal_mm.visualization.prediction_files`; None: tasks of this kind write no files.
    """

    name: str
    channels: int
    ignore_value: float
    is_label: bool
    flip_negates_x: bool = False
    is_unit_vector: bool = False
    is_distance: bool = False
    has_classes: bool = False
    head_channels: Optional[Tuple[int, ...]] = None
    default_loss: Optional[Mapping] = field(default=None, hash=False)
    finalize: Callable[[Tensor], Tensor] = identity
    tta_average: Optional[Callable[[Tensor], Tensor]] = None
    tta_merge: Callable[[Tensor], Tensor] = identity
    random_gt: Optional[RandomGroundTruth] = None
    drawer: Optional[str] = None
    prediction_format: Optional[str] = None

    def __post_init__(self):
        if self.drawer is None:
            object.__setattr__(self, 'drawer', self.name)

    def averaged(self, logits: Tensor) -> Tensor:
        """What test-time augmentation averages over the views (``tta_average``)."""
        average = self.tta_average or self.finalize
        return average(logits)


# ----------------------------------------------------------------------- the registry

# A plain table, not an mmengine Registry: it holds TaskKind instances (data),
# which a Registry (classes and functions, built from type=) cannot.
TASK_KINDS: Dict[str, TaskKind] = {}


def register_task_kind(kind: TaskKind, force: bool = False) -> TaskKind:
    """Make ``kind`` known to every layer by its name; ``force`` replaces an existing one."""
    if not isinstance(kind, TaskKind):
        raise TypeError(
            f'register_task_kind expects a TaskKind, got {type(kind).__name__}.'
        )
    if kind.name in TASK_KINDS and not force:
        raise KeyError(
            f'Task kind {kind.name!r} is already registered; pass force=True '
            'to replace it.'
        )
    TASK_KINDS[kind.name] = kind
    return kind


def task_kind(name: str) -> TaskKind:
    """The registered :class:`TaskKind` called ``name``."""
    if name not in TASK_KINDS:
        raise KeyError(
            f'Unknown task kind {name!r}; known kinds: {sorted(TASK_KINDS)}. '
            'Register a new one with ctal_mm.structures.register_task_kind.'
        )
    return TASK_KINDS[name]


register_task_kind(
    TaskKind(
        'segmentation',
        1,
        IGNORE_INDEX,
        is_label=True,
        has_classes=True,
        default_loss=dict(type='MTCrossEntropyLoss'),
        finalize=class_ids,
        tta_average=class_probabilities,
        tta_merge=class_ids,
        random_gt=random_class_ids,
        prediction_format='class_ids',
    )
)
register_task_kind(
    TaskKind(
        'depth',
        1,
        0.0,
        is_label=False,
        is_distance=True,
        head_channels=(1,),
        default_loss=dict(type='MaskedL1DepthLoss'),
        random_gt=random_depth,
        prediction_format='depth',
    )
)
register_task_kind(
    TaskKind(
        'normals',
        3,
        0.0,
        is_label=False,
        flip_negates_x=True,
        is_unit_vector=True,
        head_channels=(3,),
        default_loss=dict(type='NormalsLoss', mode='cosine'),
        finalize=unit_vectors,
        tta_merge=unit_vectors,
        random_gt=random_unit_vectors,
        prediction_format='unit_vectors',
    )
)
register_task_kind(
    TaskKind(
        'edge',
        1,
        IGNORE_INDEX,
        is_label=True,
        head_channels=(1,),
        default_loss=dict(type='BalancedBCEEdgeLoss', pos_weight=0.95),
        finalize=torch.sigmoid,
        random_gt=random_binary,
        drawer='gray_probability',
        prediction_format='probability',
    )
)
register_task_kind(
    TaskKind(
        'saliency',
        1,
        IGNORE_INDEX,
        is_label=True,
        head_channels=(1, 2),
        default_loss=dict(type='BalancedSaliencyLoss'),
        finalize=foreground_probability,
        random_gt=random_binary,
        drawer='gray_probability',
        prediction_format='probability',
    )
)

# ----------------------------------------------------------------------- a task's kind

# The kind of each task name the reference datasets use, so configs may omit ``kind`` for
# them; read only by get_task_kind (and task_display_order, for their usual order).
_REFERENCE_TASK_KINDS: Dict[str, str] = {
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
    """The :class:`TaskKind` of ``task``: from ``kinds`` (task -> kind name), or, for the task
    names of the reference datasets, their usual kind."""
    kind_name = (kinds or {}).get(task) or _REFERENCE_TASK_KINDS.get(task)
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


def task_kinds_of(
    metainfo: Optional[Mapping], dataset_meta: Optional[Mapping] = None
) -> Dict[str, str]:
    """Task -> kind name of a sample: its ``task_kinds`` meta over the dataset's."""
    kinds = dict((dataset_meta or {}).get('task_kinds') or {})
    kinds.update((metainfo or {}).get('task_kinds') or {})
    return kinds


def task_display_order(
    tasks: Sequence[str], kinds: Optional[Mapping[str, str]] = None
) -> List[str]:
    """``tasks`` in the order to show them: those of ``kinds`` in its order, then the reference
    datasets' task names in their usual order, then the others by name."""
    order = list(kinds or {}) + list(_REFERENCE_TASK_KINDS)
    rank = {task: i for i, task in reversed(list(enumerate(order)))}
    return sorted(tasks, key=lambda t: (rank.get(t, len(order)), t))
