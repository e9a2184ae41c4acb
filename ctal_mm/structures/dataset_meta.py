"""Where a dataset's meta keeps the class names and palette of each task: the one reader.

A task of a kind with classes (:attr:`TaskKind.has_classes`) finds its class names in
``<task>_classes`` and its colours in ``<task>_palette``. MMSegmentation's bare ``classes`` and
``palette`` keys, which every MMSeg tool reads, belong to the main segmentation task,
``semseg``; it reads them when it has no keys of its own.
"""

from typing import Any, Mapping, Optional

# The task whose class names and palette are MMSegmentation's bare meta keys.
MMSEG_META_TASK = 'semseg'


def class_meta_key(meta: Optional[Mapping], task: str, field: str) -> str:
    """The key of ``meta`` that holds ``field`` (``'classes'`` or ``'palette'``) of ``task``
    (the one that would, if ``meta`` has none)."""
    own = f'{task}_{field}'
    meta = meta or {}
    if task == MMSEG_META_TASK and own not in meta:
        return field
    return own


def class_names(meta: Optional[Mapping], task: str) -> Optional[Any]:
    """The class names of ``task`` in a dataset's meta, or None."""
    return (meta or {}).get(class_meta_key(meta, task, 'classes'))


def class_palette(meta: Optional[Mapping], task: str) -> Optional[Any]:
    """The class colours (K x 3) of ``task`` in a dataset's meta, or None."""
    return (meta or {}).get(class_meta_key(meta, task, 'palette'))
