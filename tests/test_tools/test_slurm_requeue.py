"""tools/slurm_train.sh without Slurm: fake srun / scontrol on PATH record their arguments.

Exit status 75 (a preemption checkpoint was saved) is turned into `scontrol requeue` inside a
batch job and into another srun with --resume outside one; a requeued job resumes; SIGUSR1 /
SIGTERM sent to the script reach the training processes."""

import signal
import subprocess
import time

import pytest
from reliability_helpers import SLURM_TRAIN, calls, env, fake_slurm


def _env(fake, **extra):
    result = env(**fake, **extra)
    for key in ('SLURM_JOB_ID', 'SLURM_RESTART_COUNT', 'SRUN_ARGS'):
        if key not in extra:
            result.pop(key, None)
    return result


def _run(fake, *args, **extra):
    return subprocess.run(
        ['bash', SLURM_TRAIN, 'part', 'job', 'cfg.py', *args],
        env=_env(fake, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )


def _train_args(line):
    """The train.py arguments of a recorded srun call."""
    return line.split('cfg.py --launcher=slurm', 1)[1].split()


def test_status_75_in_a_batch_job_requeues_it(tmp_path):
    fake = fake_slurm(tmp_path)
    proc = _run(
        fake,
        'work',
        FAKE_SRUN='codes',
        FAKE_SRUN_CODES='75',
        SLURM_JOB_ID='123',
    )
    assert proc.returncode == 0, proc.stdout
    lines = calls(fake)
    assert len(lines) == 2, lines
    assert _train_args(lines[0]) == ['--work-dir', 'work']
    assert lines[1] == 'scontrol requeue 123'
    assert 'requeueing job 123' in proc.stdout


def test_a_requeued_job_resumes_from_the_work_dir(tmp_path):
    fake = fake_slurm(tmp_path)
    proc = _run(
        fake,
        'work',
        '--resume',
        'old/epoch_1.pth',
        '--amp',
        FAKE_SRUN='codes',
        FAKE_SRUN_CODES='0',
        SLURM_JOB_ID='123',
        SLURM_RESTART_COUNT='1',
    )
    assert proc.returncode == 0, proc.stdout
    (line,) = calls(fake)
    # the checkpoint given the first time is replaced by the work dir's newest
    assert _train_args(line) == ['--work-dir', 'work', '--amp', '--resume']


def test_status_75_outside_a_job_runs_srun_again_with_resume(tmp_path):
    fake = fake_slurm(tmp_path)
    proc = _run(fake, 'work', FAKE_SRUN='codes', FAKE_SRUN_CODES='75 75 0')
    assert proc.returncode == 0, proc.stdout
    lines = calls(fake)
    assert [_train_args(line) for line in lines] == [
        ['--work-dir', 'work'],
        ['--work-dir', 'work', '--resume'],
        ['--work-dir', 'work', '--resume'],
    ]
    assert not any(line.startswith('scontrol') for line in lines)


@pytest.mark.parametrize('code', [0, 1, 137])
def test_other_statuses_end_the_script_with_them(tmp_path, code):
    fake = fake_slurm(tmp_path)
    proc = _run(
        fake, FAKE_SRUN='codes', FAKE_SRUN_CODES=str(code), SLURM_JOB_ID='9'
    )
    assert proc.returncode == code
    assert len(calls(fake)) == 1


def test_a_failed_requeue_is_reported(tmp_path):
    fake = fake_slurm(tmp_path)
    proc = _run(
        fake,
        FAKE_SRUN='codes',
        FAKE_SRUN_CODES='75',
        SLURM_JOB_ID='9',
        FAKE_SCONTROL_RC='1',
    )
    assert proc.returncode == 75
    assert 'scontrol requeue 9 failed' in proc.stdout


@pytest.mark.parametrize('sig', ['USR1', 'TERM'])
def test_signals_to_the_script_reach_srun(tmp_path, sig):
    """`#SBATCH --signal=B:USR1@120` and preemption signal the batch shell."""
    fake = fake_slurm(tmp_path)
    proc = subprocess.Popen(
        ['bash', SLURM_TRAIN, 'part', 'job', 'cfg.py'],
        env=_env(fake, FAKE_SRUN='wait', SLURM_JOB_ID='5'),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 30
    while not (tmp_path / 'ready').exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(getattr(signal, f'SIG{sig}'))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert calls(fake)[1:] == [f'srun got {sig}', 'scontrol requeue 5'], out
    assert f'SIG{sig} received, passed on' in out
