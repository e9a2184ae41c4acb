"""One run per work dir: a second run stops at once naming the first one's host and pid and
loses it nothing; a lock whose run died is taken over with a warning; ``*.tmp`` files are
removed only by the lock's holder."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from mmengine.runner import Runner
from reliability_helpers import env, train, write_config

from ctal_mm.engine.checkpoint_files import is_complete_checkpoint
from ctal_mm.engine.config_loading import load_config
from ctal_mm.engine.work_dir_lock import (
    LOCK_NAME,
    WorkDirLock,
    WorkDirLockedError,
    holds_work_dir_lock,
)
from ctal_mm.utils import register_all_modules


def _write_lock(work_dir, host, pid, age=0.0, **extra):
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / LOCK_NAME
    holder = dict(host=host, pid=pid, started='then', token='other', **extra)
    path.write_text(json.dumps(holder))
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def _dead_pid():
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_a_live_lock_is_refused_naming_host_and_pid(tmp_path):
    _write_lock(tmp_path, 'node7', 4242)
    with pytest.raises(WorkDirLockedError) as info:
        WorkDirLock(str(tmp_path)).acquire()
    message = str(info.value)
    assert 'host node7, pid 4242' in message and '--work-dir' in message
    # the same host, a live process (this test's parent)
    _write_lock(tmp_path, socket.gethostname(), os.getppid())
    with pytest.raises(WorkDirLockedError, match=f'pid {os.getppid()}'):
        WorkDirLock(str(tmp_path)).acquire()


STALE = {
    'dead pid here': 'is gone',
    'no heartbeat': 'has not updated',
    'requeued': 'earlier run of Slurm job 77',
}


@pytest.mark.parametrize('case', sorted(STALE))
def test_a_stale_lock_is_taken_over_with_a_warning(
    tmp_path, monkeypatch, case
):
    if case == 'dead pid here':
        _write_lock(tmp_path, socket.gethostname(), _dead_pid())
    elif case == 'no heartbeat':  # another host, silent for over stale_after
        _write_lock(tmp_path, 'node7', 4242, age=120)
    else:  # Slurm requeued the job onto another node; the old one was killed
        monkeypatch.setenv('SLURM_JOB_ID', '77')
        monkeypatch.setenv('SLURM_RESTART_COUNT', '1')
        _write_lock(tmp_path, 'node7', 4242, slurm_job='77', slurm_restart='0')
    lock = WorkDirLock(str(tmp_path), stale_after=60).acquire()
    try:
        assert holds_work_dir_lock(str(tmp_path))
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder['pid'] == os.getpid()
        out = lock.took_over  # the warning logged
        assert out.startswith('Took over the lock')
        assert STALE[case] in out
    finally:
        lock.release()
    assert not (tmp_path / LOCK_NAME).exists()
    assert not holds_work_dir_lock(str(tmp_path))


def test_the_holder_keeps_its_lock_fresh(tmp_path):
    lock = WorkDirLock(str(tmp_path), stale_after=0.4).acquire()
    try:
        path = tmp_path / LOCK_NAME
        os.utime(path, (time.time() - 100, time.time() - 100))
        time.sleep(0.5)
        assert (
            time.time() - path.stat().st_mtime < 0.4
        )  # the heartbeat touched it
    finally:
        lock.release()


def test_a_run_from_python_takes_the_lock_before_cleaning(tmp_path):
    register_all_modules(init_default_scope=False)
    cfg = load_config(write_config(tmp_path / 'tiny.py', max_epochs=1))
    cfg.custom_hooks = []
    work = tmp_path / 'work'
    cfg.work_dir = str(work)
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    _write_lock(work, socket.gethostname(), os.getppid())
    in_progress = work / 'epoch_1.pth.tmp'  # the other run's save
    in_progress.write_bytes(b'half')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(WorkDirLockedError):
        runner.train()
    assert in_progress.exists() and runner.iter == 0


def test_a_second_run_in_the_work_dir_stops_and_the_first_loses_nothing(
    tmp_path,
):
    config = write_config(tmp_path / 'tiny.py', max_epochs=3)
    work = tmp_path / 'work'
    first = subprocess.Popen(
        [sys.executable, 'tools/train.py', config, '--work-dir', str(work)],
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        env=env(CTAL_FAULT='pause_in_step:3'),  # epoch 2, epoch_1.pth written
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while not (work / 'paused').exists():
            assert first.poll() is None, first.stdout.read()[-3000:]
            assert time.time() < deadline
            time.sleep(0.2)
        in_progress = (
            work / 'epoch_2.pth.tmp'
        )  # as if the first run were saving
        in_progress.write_bytes(b'half')
        started = time.time()
        second = train(config, work)
        assert second.returncode != 0
        assert time.time() - started < 60
        assert 'WorkDirLockedError' in second.stdout
        assert f'{socket.gethostname()}, pid {first.pid}' in second.stdout
        assert in_progress.exists() and is_complete_checkpoint(
            str(work / 'epoch_1.pth')
        )
        in_progress.unlink()
        (work / 'continue').touch()
        out, _ = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out[-3000:]
    assert is_complete_checkpoint(str(work / 'epoch_3.pth'))
    assert (work / 'last_checkpoint').read_text().endswith('epoch_3.pth')
    assert not (work / LOCK_NAME).exists()  # released at the end
