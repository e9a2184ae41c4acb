"""SIGTERM / SIGUSR1 (Slurm's preemption and --signal): a checkpoint after the current
iteration, exit status 75, and a resume that continues at that iteration and ends with the
weights of an uninterrupted run, bit for bit (deterministic, CPU)."""

import json
import os.path as osp
import signal
import subprocess
import time

import pytest
from reliability_helpers import (
    SLURM_TRAIN,
    assert_same_weights,
    calls,
    env,
    fake_slurm,
    train,
    write_config,
)

from ctal_mm.engine.hooks.preemption_hook import REQUEUE_EXIT_CODE
from ctal_mm.utils import safe_torch_load

# 3 epochs of 3 iterations (6 samples, batch 2)
EPOCHS, PER_EPOCH = 3, 3


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp('reference')
    config = write_config(
        root / 'tiny.py', max_epochs=EPOCHS, num_samples=6, batch_size=2
    )
    work = root / 'work'
    proc = train(config, work)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return config, work


def _losses(work, rank=0):
    with open(work / f'losses_rank{rank}.jsonl') as f:
        return [json.loads(line) for line in f]


def _pointer(work):
    with open(work / 'last_checkpoint') as f:
        return osp.basename(f.read().strip())


@pytest.mark.parametrize(
    'fault, signal_name, done',
    [
        # inside iteration 4 (epoch 2, its 2nd): stops after 5 iterations, mid-epoch
        ('sigterm_in_step:4', 'SIGTERM', 5),
        # inside the last iteration of epoch 1: stopped before the epoch's end hooks
        ('sigusr1_in_step:2', 'SIGUSR1', 3),
    ],
)
def test_signal_then_resume_is_bit_identical(
    reference, tmp_path, fault, signal_name, done
):
    config, ref_work = reference
    work = tmp_path / 'work'

    proc = train(config, work, fault=fault)
    assert proc.returncode == REQUEUE_EXIT_CODE, proc.stdout[-3000:]
    epoch, in_epoch = (done - 1) // PER_EPOCH, (done - 1) % PER_EPOCH + 1
    line = (
        f'{signal_name} received: saved {work / f"iter_{done}.pth"} after '
        f'iteration {done} (epoch {epoch + 1}, iteration {in_epoch}/{PER_EPOCH})'
    )
    assert line in proc.stdout, proc.stdout[-3000:]
    assert _pointer(work) == f'iter_{done}.pth'
    assert [r['iter'] for r in _losses(work)] == list(range(done))
    meta = safe_torch_load(str(work / f'iter_{done}.pth'))['meta']
    assert (meta['epoch'], meta['iter']) == (epoch, done)

    # the same command again, as a requeued job runs it
    resumed = train(config, work, '--resume')
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert (
        f'Resuming epoch {epoch + 1} at iteration {in_epoch + 1}/{PER_EPOCH}'
        in resumed.stdout
    )
    # each iteration ran once, none replayed, with the uninterrupted run's losses
    assert _losses(work) == _losses(ref_work)
    assert_same_weights(work / f'epoch_{EPOCHS}.pth', ref_work / 'epoch_3.pth')
    # the preemption checkpoint went once a later checkpoint was complete
    assert not (work / f'iter_{done}.pth').exists()
    assert 'Removed the preemption checkpoint' in resumed.stdout
    assert 'eta: -' not in resumed.stdout


def test_signal_on_one_rank_stops_all_at_the_same_iteration(tmp_path):
    """Only rank 1 gets SIGTERM (inside iteration 3); both ranks stop after it, one
    checkpoint is written, and the resumed 2-process run trains the rest only."""
    config = write_config(
        tmp_path / 'tiny.py', max_epochs=2, num_samples=16, batch_size=2
    )
    work = tmp_path / 'work'
    proc = train(
        config, work, fault='sigterm_in_step:3', nproc=2, CTAL_FAULT_RANK='1'
    )
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert f'exitcode  : {REQUEUE_EXIT_CODE}' in proc.stdout, proc.stdout[
        -3000:
    ]
    assert 'SIGTERM received: saved' in proc.stdout
    for rank in (0, 1):
        assert [r['iter'] for r in _losses(work, rank)] == [0, 1, 2, 3]
    assert _pointer(work) == 'iter_4.pth'
    meta = safe_torch_load(str(work / 'iter_4.pth'))['meta']
    assert len(meta['generator_states']['ranks']) == 2

    resumed = train(config, work, '--resume', nproc=2)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    for rank in (0, 1):
        assert [r['iter'] for r in _losses(work, rank)] == list(range(8))


def test_slurm_train_requeues_and_resumes_to_the_same_weights(
    reference, tmp_path
):
    """SIGUSR1 to tools/slurm_train.sh at a moment during training (as
    ``#SBATCH --signal=B:USR1@120`` sends it), srun standing in as one local process:
    the job is requeued, and the requeued job's run ends with the reference weights."""
    config, ref_work = reference
    work = tmp_path / 'work'
    fake = fake_slurm(tmp_path / 'slurm')
    cmd = ['bash', SLURM_TRAIN, 'part', 'job', config, str(work)]
    base = env(**fake, FAKE_SRUN='exec')
    base.pop('SLURM_RESTART_COUNT', None)
    with open(tmp_path / 'first.log', 'w') as log:
        proc = subprocess.Popen(
            cmd,
            env=dict(base, SLURM_JOB_ID='7'),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (work / 'losses_rank0.jsonl').exists():
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGUSR1)
        proc.wait(timeout=120)
    out = (tmp_path / 'first.log').read_text()
    assert proc.returncode == 0, out[-3000:]
    assert 'SIGUSR1 received: saved' in out, out[-3000:]
    assert calls(fake)[-1] == 'scontrol requeue 7'

    # Slurm starts the batch script again, with SLURM_RESTART_COUNT set
    again = subprocess.run(
        cmd,
        env=dict(base, SLURM_JOB_ID='7', SLURM_RESTART_COUNT='1'),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout[-3000:]
    assert 'Resuming epoch' in again.stdout
    assert _losses(work) == _losses(ref_work)
    assert_same_weights(work / f'epoch_{EPOCHS}.pth', ref_work / 'epoch_3.pth')
