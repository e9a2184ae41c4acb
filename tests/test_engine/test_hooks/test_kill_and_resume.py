"""SIGKILL during a step, while a checkpoint is written, before the pointer is updated and at
a random moment: ``--resume`` continues from the newest complete checkpoint and ends with
exactly the weights of an uninterrupted run (deterministic mode, CPU)."""

import glob
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import time

import pytest
from reliability_helpers import (
    TRAIN,
    assert_same_weights,
    env,
    train,
    write_config,
)

from ctal_mm.engine.checkpoint_files import is_complete_checkpoint

KILLED = -signal.SIGKILL


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """4 uninterrupted epochs of 2 iterations; returns (config, final checkpoint)."""
    root = tmp_path_factory.mktemp('reference')
    config = write_config(root / 'tiny.py', max_epochs=4)
    work = root / 'work'
    proc = train(config, work)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return config, work / 'epoch_4.pth'


def _checkpoints(work):
    return sorted(glob.glob(str(work / '*.pth')))


def _pointer(work):
    with open(work / 'last_checkpoint') as f:
        return osp.basename(f.read().strip())


def _assert_all_complete(work):
    for path in _checkpoints(work):
        assert is_complete_checkpoint(path), f'{path} is truncated'


def test_killed_in_a_step_in_a_save_and_before_the_pointer(
    reference, tmp_path
):
    config, final = reference
    work = tmp_path / 'work'

    # 1. killed inside iteration 3 (epoch 2), after backward, before the optimizer step
    proc = train(config, work, fault='kill_in_step:3')
    assert proc.returncode == KILLED, proc.stdout[-3000:]
    assert _pointer(work) == 'epoch_1.pth'
    _assert_all_complete(work)

    # 2. resumed, then killed while epoch_2.pth is half written. max_keep_ckpts=1: the old
    # checkpoint must survive until the new one is complete (mmengine deletes it first)
    proc = train(config, work, '--resume', fault='kill_in_save:2')
    assert proc.returncode == KILLED, proc.stdout[-3000:]
    assert 'Resume: from' in proc.stdout and 'epoch_1.pth' in proc.stdout
    assert [osp.basename(p) for p in _checkpoints(work)] == ['epoch_1.pth']
    assert (work / 'epoch_2.pth.tmp').is_file()  # the cut, never renamed
    assert _pointer(work) == 'epoch_1.pth'
    _assert_all_complete(work)

    # 3. resumed, then killed after epoch_3.pth is complete but before the pointer names it
    proc = train(config, work, '--resume', fault='kill_before_pointer:3')
    assert proc.returncode == KILLED, proc.stdout[-3000:]
    assert (
        'epoch_2.pth.tmp, left by a save that was interrupted' in proc.stdout
    )
    assert not (work / 'epoch_2.pth.tmp').exists()
    assert _pointer(work) == 'epoch_2.pth'
    assert is_complete_checkpoint(str(work / 'epoch_3.pth'))

    # 4. resumed from the newest complete checkpoint (not the stale pointer), to the end
    proc = train(config, work, '--resume')
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'is newer than' in proc.stdout and 'resumed epoch: 3' in proc.stdout
    assert_same_weights(work / 'epoch_4.pth', final)


def test_killed_at_a_random_moment(reference, tmp_path):
    config, final = reference
    work = tmp_path / 'work'
    log = open(tmp_path / 'killed.log', 'w')
    proc = subprocess.Popen(
        [sys.executable, TRAIN, config, '--work-dir', str(work)],
        env=env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    # wait for the first training iteration, then kill within the next few iterations,
    # checkpoint saves included
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if glob.glob(str(work / 'losses_rank0.jsonl')):
            break
        time.sleep(0.05)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 2.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    log.close()
    _assert_all_complete(work)

    resumed = train(config, work, '--resume')
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert_same_weights(work / 'epoch_4.pth', final)
