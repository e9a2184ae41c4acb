"""A full disk while saving: the partial ``.tmp`` is removed at once, the error names the file
and the space it needs, the previous checkpoint survives, and ``--resume`` on a disk an
interrupted save filled frees the leftover before writing anything."""

import errno
import os

import pytest
from reliability_helpers import train, write_config

from ctal_mm.engine.checkpoint_files import (
    DiskFullError,
    atomic_write,
    is_complete_checkpoint,
)


def test_enospc_removes_the_partial_file_and_names_it(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_2.pth'
    atomic_write(b'old', path)

    def fsync(fd):  # the data did not fit
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'fsync', fsync)
    with pytest.raises(DiskFullError) as info:
        atomic_write(b'x' * 3 * 2**20, path)
    message = str(info.value)
    assert str(path) in message and 'needs 3.0 MB' in message
    assert (
        'free in' in message
        and 'max_keep_ckpts=k needs room for k + 1' in message
    )
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b'old'
    assert not (tmp_path / 'epoch_2.pth.tmp').exists()


def test_a_full_disk_in_training_then_resume(tmp_path):
    config = write_config(tmp_path / 'tiny.py', max_epochs=3)
    work = tmp_path / 'work'
    proc = train(config, work, fault='enospc_in_save:2')
    assert proc.returncode != 0
    assert (
        f'No space left to write {work / "epoch_2.pth"}: it needs'
        in proc.stdout
    )
    assert not (work / 'epoch_2.pth.tmp').exists()  # removed at once
    assert is_complete_checkpoint(
        str(work / 'epoch_1.pth')
    )  # the previous one
    assert (work / 'last_checkpoint').read_text().endswith('epoch_1.pth')

    # a save killed mid-write on a full disk: its .tmp holds the space, and every write in
    # the work dir fails until it is gone
    (work / 'epoch_2.pth.tmp').write_bytes(b'half')
    proc = train(config, work, '--resume', fault='full_disk_while_tmp:2')
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (
        'epoch_2.pth.tmp, left by a save that was interrupted' in proc.stdout
    )
    assert is_complete_checkpoint(str(work / 'epoch_3.pth'))
