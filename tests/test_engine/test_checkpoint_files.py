"""Atomic checkpoint files and choosing the checkpoint to resume from."""

import os

import pytest
import torch
from mmengine.fileio import get_file_backend

from ctal_mm.engine.checkpoint_files import (
    ATOMIC_BACKEND,
    atomic_write,
    find_resumable_checkpoint,
    is_complete_checkpoint,
    remove_incomplete_files,
)


def _save(path, value=0):
    torch.save({'state_dict': {'w': torch.full((64,), float(value))}}, path)
    return str(path)


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(size // 2)


def test_atomic_write_replaces_whole_files_and_leaves_no_tmp(tmp_path):
    path = tmp_path / 'sub' / 'a.pth'
    atomic_write(b'first', path)
    atomic_write(b'second', path)
    assert path.read_bytes() == b'second'
    assert os.listdir(tmp_path / 'sub') == ['a.pth']
    backend = get_file_backend(
        str(path), backend_args=dict(backend=ATOMIC_BACKEND)
    )
    backend.put_text('text', str(tmp_path / 'last_checkpoint'))
    assert (tmp_path / 'last_checkpoint').read_text() == 'text'


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'a.pth'
    atomic_write(b'old', path)

    def fail(fd):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'fsync', fail)
    with pytest.raises(OSError, match='disk full'):
        atomic_write(b'new' * 1000, path)
    assert path.read_bytes() == b'old'


def test_truncated_checkpoints_are_recognised(tmp_path):
    good = _save(tmp_path / 'epoch_1.pth')
    assert is_complete_checkpoint(good)
    _truncate(good)
    assert not is_complete_checkpoint(good)
    assert not is_complete_checkpoint(str(tmp_path / 'missing.pth'))
    (tmp_path / 'text.pth').write_text('not a checkpoint')
    assert not is_complete_checkpoint(str(tmp_path / 'text.pth'))


def test_resume_takes_the_newest_complete_checkpoint(tmp_path):
    assert find_resumable_checkpoint(str(tmp_path)) == (None, [])
    e1, e2 = _save(tmp_path / 'epoch_1.pth'), _save(tmp_path / 'epoch_2.pth')
    _save(tmp_path / 'best_mIoU_epoch_1.pth')
    (tmp_path / 'last_checkpoint').write_text(e1)
    path, notes = find_resumable_checkpoint(str(tmp_path))
    assert (
        path == e2 and 'is newer than' in notes[0]
    )  # the pointer was not updated
    (tmp_path / 'last_checkpoint').write_text(e2)
    assert find_resumable_checkpoint(str(tmp_path)) == (e2, [])
    _truncate(
        e2
    )  # e.g. written by mmengine's own hook when the run was killed
    path, notes = find_resumable_checkpoint(str(tmp_path))
    assert path == e1 and 'epoch_2.pth is incomplete' in notes[0]
    os.remove(e1)
    (tmp_path / 'last_checkpoint').write_text(e1)
    path, notes = find_resumable_checkpoint(str(tmp_path))
    assert path is None and any('does not exist' in n for n in notes)


def test_leftovers_of_interrupted_saves_are_removed(tmp_path):
    for name in ('epoch_3.pth.tmp', 'last_checkpoint.tmp', 'notes.tmp'):
        (tmp_path / name).write_text('x')
    removed = remove_incomplete_files(str(tmp_path))
    assert sorted(os.path.basename(p) for p in removed) == [
        'epoch_3.pth.tmp',
        'last_checkpoint.tmp',
    ]
    assert os.listdir(tmp_path) == ['notes.tmp']  # not ours: kept


class _Runner:
    """What CheckpointHook.before_run reads of a Runner."""

    def __init__(self, work_dir, load_from=None):
        from mmengine.logging import MMLogger

        self.work_dir = str(work_dir)
        self._resume = True
        self._load_from = load_from
        self.logger = MMLogger.get_current_instance()


def test_the_hook_resolves_resume_before_the_runner_loads(tmp_path):
    from ctal_mm.engine.hooks import CheckpointHook

    hook = CheckpointHook(interval=1)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    runner = _Runner(tmp_path)
    hook.before_run(runner)  # the pointer names a file that is gone
    assert runner._resume is False and runner._load_from is None
    good = _save(tmp_path / 'epoch_2.pth')
    runner = _Runner(tmp_path)
    hook.before_run(runner)
    assert runner._resume and runner._load_from == good
    _truncate(good)
    with pytest.raises(ValueError, match='epoch_2.pth: the file is truncated'):
        hook.before_run(_Runner(tmp_path, load_from=good))
