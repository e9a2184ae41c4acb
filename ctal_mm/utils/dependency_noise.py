"""Imports of dependencies that print lines irrelevant to ctal_mm, done once, with those lines
filtered (and nothing else): every ctal_mm process imports these modules anyway.

- mmseg (``mmseg/datasets/__init__.py`` and ``mmseg/datasets/transforms/__init__.py``) tries the
  optional OneDL integration and, without it, prints ``Could not import OneDL`` to stdout (its
  ``print_log(..., level=DEBUG)`` has no logger, so it is a plain print), once per module and per
  process: twice for one process, four times under a 2-process torchrun. ctal_mm has no OneDL
  datasets.
- mmcv-lite (``mmcv/cnn/bricks/transformer.py``) warns ``Fail to import
  MultiScaleDeformableAttention`` because mmcv-lite has no compiled ops; that attention is used
  by detection transformers, never by ctal_mm.
- mmengine's ``CheckpointHook.before_train`` and ``save_checkpoint`` always build the
  deprecated ``FileClient`` (kept for ``file_client_args``, which ctal_mm never sets: it saves
  through ``backend_args``), which logs ``"FileClient" will be deprecated`` and
  ``"HardDiskBackend" is the alias of "LocalBackend"`` as warnings in every training run.
  :func:`drop_file_client_deprecation` makes a run's logger drop those two records.
"""

import contextlib
import io
import logging
import sys
import warnings

ONEDL_LINE = 'Could not import OneDL'
DEFORMABLE_ATTENTION_WARNING = (
    r'Fail to import ``MultiScaleDeformableAttention``'
)

FILE_CLIENT_DEPRECATIONS = (
    '"FileClient" will be deprecated in future',
    '"HardDiskBackend" is the alias of "LocalBackend"',
)


def _not_a_file_client_deprecation(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(FILE_CLIENT_DEPRECATIONS)


def drop_file_client_deprecation(logger: logging.Logger) -> None:
    """Make ``logger`` drop mmengine's two FileClient deprecation records (idempotent);
    every other record passes."""
    logger.addFilter(_not_a_file_client_deprecation)


def import_dependencies_quietly() -> None:
    """Import ``mmseg.datasets`` and ``mmcv.cnn.bricks.transformer`` with their noise filtered.

    Idempotent: a module imported already is not imported again, so nothing is printed then."""
    if 'mmseg.datasets' not in sys.modules:
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                import mmseg.datasets  # noqa: F401
        finally:
            kept = [
                line
                for line in printed.getvalue().splitlines(keepends=True)
                if line.strip() != ONEDL_LINE
            ]
            sys.stdout.write(''.join(kept))
    if 'mmcv.cnn.bricks.transformer' not in sys.modules:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                'ignore',
                message=DEFORMABLE_ATTENTION_WARNING,
                category=UserWarning,
            )
            import mmcv.cnn.bricks.transformer  # noqa: F401
