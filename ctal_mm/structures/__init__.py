from .dataset_meta import (
    MMSEG_META_TASK,
    class_meta_key,
    class_names,
    class_palette,
)
from .multitask_data_sample import MultiTaskDataSample
from .task_kinds import (
    IGNORE_INDEX,
    TASK_KINDS,
    TaskKind,
    get_task_kind,
    register_task_kind,
    task_display_order,
    task_kind,
    task_kinds_of,
    unit_vectors,
)

__all__ = [
    'MultiTaskDataSample',
    'TaskKind',
    'TASK_KINDS',
    'IGNORE_INDEX',
    'register_task_kind',
    'task_kind',
    'get_task_kind',
    'task_kinds_of',
    'task_display_order',
    'unit_vectors',
    'MMSEG_META_TASK',
    'class_meta_key',
    'class_names',
    'class_palette',
]
