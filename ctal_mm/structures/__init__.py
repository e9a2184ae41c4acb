from .multitask_data_sample import MultiTaskDataSample
from .task_kinds import (
    DEFAULT_TASK_KIND,
    IGNORE_INDEX,
    TASK_KINDS,
    TaskKind,
    get_task_kind,
)

__all__ = [
    'MultiTaskDataSample',
    'TaskKind',
    'TASK_KINDS',
    'DEFAULT_TASK_KIND',
    'IGNORE_INDEX',
    'get_task_kind',
]
