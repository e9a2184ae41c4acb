"""Checkpoint files that are either complete or absent, and finding the one to resume from.

A process killed while ``torch.save`` writes leaves a truncated file; if that file has the final
name, ``--resume`` later fails on it, or worse, the pointer ``work_dir/last_checkpoint`` names a
file that was removed to make room for it. Here every file is written to ``<path>.tmp``, flushed
to disk, then renamed over ``<path>`` (``os.replace`` is atomic on POSIX and Windows), so
``<path>`` holds the old content or the new, never a part. :class:`AtomicLocalBackend` is
mmengine's local file backend with that write; ctal_mm's CheckpointHook saves through it.
Every checkpoint written here carries its content hash
(:mod:`ctal_mm.utils.checkpoint_integrity`), checked whenever it is loaded.
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

from ctal_mm.utils.checkpoint_integrity import (
    ZIP_MAGIC,
    CorruptCheckpointError,
    add_content_hash,
    verify_checkpoint,
)

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


def atomic_write(
    data: bytes, path: Union[str, os.PathLike], content_hash: bool = False
) -> None:
    """Write ``data`` to ``path`` through ``<path>.tmp`` and a rename.

    A reader (or a resumed run) sees either the previous file or the complete new one; a
    process killed mid-write leaves only ``<path>.tmp`` behind. A write that fails (a full
    disk, a quota) removes ``<path>.tmp`` at once; for lack of space it raises
    :class:`DiskFullError` naming the file and the space it needs.

    ``content_hash``: ``data`` is a ``torch.save`` zip archive; the content hash record
    is appended before the file is flushed (see :func:`write_checkpoint`).
    """
    path = os.fspath(path)
    folder = osp.dirname(path) or '.'
    os.makedirs(folder, exist_ok=True)
    tmp = path + TMP_SUFFIX
    try:
        with open(tmp, 'w+b') as f:
            f.write(data)
            if content_hash:
                add_content_hash(f, data)
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


def write_checkpoint(data: bytes, path: Union[str, os.PathLike]) -> None:
    """Write the ``torch.save`` output ``data`` to ``path`` atomically, with its content
    hash (what every checkpoint ctal_mm writes carries; checked on every load)."""
    if not data.startswith(ZIP_MAGIC):
        raise ValueError(
            f'{path}: not a torch zip checkpoint (torch.save with '
            '_use_new_zipfile_serialization=False?); only zip archives carry a '
            'content hash.'
        )
    atomic_write(data, path, content_hash=True)


class AtomicLocalBackend(LocalBackend):
    """mmengine's LocalBackend whose ``put`` / ``put_text`` write atomically (see module doc);
    ``put`` of a ``torch.save`` archive to a ``.pth`` file adds its content hash.

    Registered as mmengine file backend ``'ctal_mm_atomic_local'``: pass
    ``backend_args=dict(backend='ctal_mm_atomic_local')`` to anything that writes through
    mmengine.fileio.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        # mmengine's save_checkpoint hands over torch.save's bytes
        atomic_write(
            obj,
            filepath,
            content_hash=os.fspath(filepath).endswith('.pth')
            and obj.startswith(ZIP_MAGIC),
        )

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
    pointer's file when its name carries no step. A file whose content hash does not match
    is passed over for the next newest.

    Returns:
        ``(path or None, notes)``: ``notes`` say which files were skipped (missing, truncated,
            damaged).
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
    stepped = sorted(
        (p for p in complete if _step(p) is not None), key=_step, reverse=True
    )
    if named in complete and _step(named) is None:
        order = [named] + stepped
    else:
        order = stepped or complete[-1:]
    for path in order:
        try:
            verify_checkpoint(path)
        except CorruptCheckpointError as error:
            notes.append(f'{path} skipped: {error}')
            continue
        named_step = _step(named) if named is not None else None
        if (
            path != named
            and named is not None
            and (named_step is None or named_step < (_step(path) or 0))
        ):
            notes.append(
                f'{path} is newer than {named}, which {pointer} names '
                '(interrupted before the pointer was updated?)'
            )
        return path, notes
    return None, notes


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
