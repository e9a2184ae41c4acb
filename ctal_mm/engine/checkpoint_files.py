"""Checkpoint files that are either complete or absent, and finding the one to resume from.

A process killed while ``torch.save`` writes leaves a truncated file; if that file has the final
name, ``--resume`` later fails on it, or worse, the pointer ``work_dir/last_checkpoint`` names a
file that was removed to make room for it. Here every file is written to ``<path>.tmp``, flushed
to disk, then renamed over ``<path>`` (``os.replace`` is atomic on POSIX and Windows), so
``<path>`` holds the old content or the new, never a part. :class:`AtomicLocalBackend` is
mmengine's local file backend with that write; ctal_mm's CheckpointHook saves through it.
"""

import errno
import os
import os.path as osp
import re
import shutil
from typing import List, Optional, Tuple, Union
from zipfile import BadZipFile, ZipFile

from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log

TMP_SUFFIX = '.tmp'
POINTER = 'last_checkpoint'  # mmengine's name for the file naming the latest checkpoint
ATOMIC_BACKEND = 'ctal_mm_atomic_local'
# mmengine's filename_tmpl defaults, 'epoch_{}.pth' / 'iter_{}.pth' (best_* are copies)
_STEP_NAME = re.compile(r'^(?:epoch|iter)_(\d+)\.pth$')


def _fsync_dir(path: str) -> None:
    # The rename is durable only once the directory entry is; not possible on Windows.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class DiskFullError(OSError):
    """A file could not be written for lack of space (or quota); nothing partial is left."""


def _megabytes(size: int) -> str:
    return f'{size / 2**20:.1f} MB'


def _disk_full(path: str, needed: int, error: OSError) -> DiskFullError:
    folder = osp.dirname(path) or '.'
    try:
        free = f'{_megabytes(shutil.disk_usage(folder).free)} free'
    except OSError:
        free = 'free space unknown'
    return DiskFullError(
        error.errno,
        f'No space left to write {path}: it needs {_megabytes(needed)}, '
        f'{free} in {folder} ({os.strerror(error.errno)}). The partial file was '
        'removed and the previous file of that name, if any, is intact. Free space '
        'or write elsewhere (--work-dir, default_hooks.checkpoint.out_dir); a run '
        'with max_keep_ckpts=k needs room for k + 1 checkpoints, since the oldest is '
        'deleted only after the new one is complete.',
        path,
    )


def atomic_write(data: bytes, path: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``path`` through ``<path>.tmp`` and a rename.

    A reader (or a resumed run) sees either the previous file or the complete new one; a
    process killed mid-write leaves only ``<path>.tmp`` behind. A write that fails (a full
    disk, a quota) removes ``<path>.tmp`` at once; for lack of space it raises
    :class:`DiskFullError` naming the file and the space it needs.
    """
    path = os.fspath(path)
    folder = osp.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    tmp = path + TMP_SUFFIX
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        # a partial .tmp would hold the space the next save needs
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(error, OSError) and error.errno in (
            errno.ENOSPC,
            errno.EDQUOT,
        ):
            raise _disk_full(path, len(data), error) from error
        raise
    _fsync_dir(folder)


class AtomicLocalBackend(LocalBackend):
    """mmengine's LocalBackend whose ``put`` / ``put_text`` write atomically (see module doc).

    Registered as mmengine file backend ``'ctal_mm_atomic_local'``: pass
    ``backend_args=dict(backend='ctal_mm_atomic_local')`` to anything that writes through
    mmengine.fileio.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        atomic_write(obj, filepath)

    def put_text(
        self,
        obj: str,
        filepath: Union[str, os.PathLike],
        encoding: str = 'utf-8',
    ) -> None:
        atomic_write(obj.encode(encoding), filepath)


register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a checkpoint ``torch.save`` wrote to the end.

    torch saves a zip archive whose central directory is written last, so a truncated file has
    none and ``zipfile`` refuses it; reading the directory costs milliseconds, not a load.
    """
    if not osp.isfile(path):
        return False
    try:
        with ZipFile(path) as archive:
            return bool(archive.namelist())
    except (BadZipFile, OSError, ValueError):
        return False


def _step(path: str) -> Optional[int]:
    match = _STEP_NAME.match(osp.basename(path))
    return int(match.group(1)) if match else None


def find_resumable_checkpoint(
    work_dir: str,
) -> Tuple[Optional[str], List[str]]:
    """The newest complete checkpoint of a run, and what was passed over and why.

    Looks at the file ``work_dir/last_checkpoint`` names and at the ``epoch_<n>.pth`` /
    ``iter_<n>.pth`` files beside it; takes the complete one with the highest step (a run
    killed between writing a checkpoint and updating the pointer loses nothing), or the
    pointer's file when its name carries no step.

    Returns:
        ``(path or None, notes)``: ``notes`` say which files were skipped (missing, truncated).
    """
    notes = []
    named = None
    pointer = osp.join(work_dir, POINTER)
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
        if named is None:
            notes.append(f'{pointer} is empty')
    folder = osp.dirname(named) if named else work_dir
    candidates = set()
    if osp.isdir(folder):
        candidates.update(
            osp.join(folder, name)
            for name in os.listdir(folder)
            if _STEP_NAME.match(name)
        )
    if named is not None:
        candidates.add(named)
    complete = []
    for path in sorted(candidates):
        if is_complete_checkpoint(path):
            complete.append(path)
        elif osp.exists(path):
            notes.append(f'{path} is incomplete (interrupted while saved?)')
        else:
            notes.append(f'{path} (named by {pointer}) does not exist')
    if not complete:
        return None, notes
    stepped = [p for p in complete if _step(p) is not None]
    if named in complete and _step(named) is None:
        return named, notes
    best = max(stepped, key=_step) if stepped else complete[-1]
    if named is not None and best != named:
        notes.append(
            f'{best} is newer than {named}, which {pointer} names '
            '(interrupted before the pointer was updated?)'
        )
    return best, notes


def remove_incomplete_files(folder: str) -> List[str]:
    """Delete the ``<checkpoint>.pth.tmp`` and ``last_checkpoint.tmp`` files an interrupted
    :func:`atomic_write` left in ``folder``."""
    removed = []
    if not osp.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        target = name[: -len(TMP_SUFFIX)]
        if name.endswith(TMP_SUFFIX) and (
            target.endswith('.pth') or target == POINTER
        ):
            path = osp.join(folder, name)
            try:
                os.remove(path)
            except OSError as error:
                print_log(
                    f'Could not remove the incomplete file {path}: {error}',
                    logger='current',
                )
                continue
            removed.append(path)
    return removed
