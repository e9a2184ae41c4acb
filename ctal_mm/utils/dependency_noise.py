"""Imports of dependencies that print lines irrelevant to ctal_mm, done once, with those lines
filtered (and nothing else): every ctal_mm process imports these modules anyway.

- mmseg (``mmseg/datasets/__init__.py`` and ``mmseg/datasets/transforms/__init__.py``) tries the
  optional OneDL integration and, without it, prints ``Could not import OneDL`` to stdout (its
  ``print_log(..., level=DEBUG)`` has no logger, so it is a plain print), once per module and per
  process: twice for one process, four times under a 2-process torchrun. ctal_mm has no OneDL
  datasets.
- ``mmcv/cnn/bricks/transformer.py`` (the same code in mmcv 2.1.0 and onedl-mmcv 2.3.6) warns
  about ``MultiScaleDeformableAttention`` as it is imported, whichever way the import of the
  compiled op goes: without compiled ops (the default stack's pure-Python mmcv) a
  ``UserWarning`` "Fail to import ..."; with them (mmcv 2.1.0 as ``STACK=openmmlab`` builds it) an
  ``ImportWarning`` "... has been moved to ``mmcv.ops.multi_scale_deform_attn`` ...". That
  attention serves detection transformers, never ctal_mm. Both are matched by category and by
  the module that emits them, not by wording, so any mmcv build's variant is filtered, while
  the import lasts only.
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
# the module whose import warns about MultiScaleDeformableAttention, and the categories of
# its two warnings (ops missing / ops present); a regex matched against the whole module name
TRANSFORMER_MODULE = r'mmcv\.cnn\.bricks\.transformer\Z'
TRANSFORMER_IMPORT_WARNINGS = (UserWarning, ImportWarning)

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
            for category in TRANSFORMER_IMPORT_WARNINGS:
                warnings.filterwarnings(
                    'ignore', category=category, module=TRANSFORMER_MODULE
                )
            import mmcv.cnn.bricks.transformer  # noqa: F401
