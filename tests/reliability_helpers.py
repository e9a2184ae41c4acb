"""Tiny synthetic training runs for the reliability tests (subprocesses of tools/train.py)."""

import os
import os.path as osp
import socket
import subprocess
import sys

import torch

from ctal_mm.utils import safe_torch_load

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
DEMO = osp.join(
    REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-4e_synthetic-96x128.py'
)
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
DIST_TRAIN = osp.join(REPO, 'tools', 'dist_train.sh')


def write_config(
    path,
    max_epochs=4,
    num_samples=4,
    batch_size=2,
    train_dataset='',
    model='',
    extra='',
):
    """The demo config shrunk to seconds (32x32 scenes, 2 iterations an epoch), with the
    fault-injection and loss-recording hooks; deterministic on CPU.

    ``train_dataset``, ``model``: more arguments of the training dataset and the model
    (config text); ``extra``: config text appended at the end."""
    text = f"""
_base_ = [{DEMO!r}]
custom_imports = dict(imports=['reliability_faults'], allow_failed_imports=False)
custom_hooks = [dict(type='FaultInjectionHook'), dict(type='LossRecorderHook')]
randomness = dict(seed=0, deterministic=True)
train_dataloader = dict(
    batch_size={batch_size}, num_workers=0, persistent_workers=False,
    dataset=dict(num_samples={num_samples}, img_size=(32, 32), {train_dataset}))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(num_samples=2, img_size=(32, 32)))
test_dataloader = val_dataloader
model = dict(decoder=dict(affinity=dict(feature_size=(8, 8))), {model})
train_cfg = dict(max_epochs={max_epochs}, val_interval=100)
param_scheduler = [dict(type='CosineAnnealingLR', T_max={max_epochs}, by_epoch=True,
                        begin=0, end={max_epochs})]
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=1, save_best=None),
    logger=dict(interval=1))
{extra}
"""
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


def env(**extra):
    paths = [REPO, HERE, os.environ.get('PYTHONPATH', '')]
    result = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join(p for p in paths if p),
    )
    result.pop('CTAL_FAULT', None)
    result.pop('CTAL_FAULT_RANK', None)
    result.update(extra)
    return result


def train(config, work_dir, *args, fault=None, nproc=None, timeout=300, **kw):
    """Run tools/train.py (``nproc``: tools/dist_train.sh with that many CPU processes);
    returns the CompletedProcess, stdout and stderr merged. ``kw``: environment variables."""
    extra = dict(kw)
    if fault is not None:
        extra['CTAL_FAULT'] = fault
    if nproc is None:
        cmd = [sys.executable, TRAIN, str(config)]
    else:
        cmd = ['bash', DIST_TRAIN, str(config), str(nproc)]
        extra.update(PYTHON=sys.executable, PORT=str(free_port()))
    return subprocess.run(
        cmd + ['--work-dir', str(work_dir)] + list(args),
        env=env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def run_test(config, checkpoint, work_dir, *args, timeout=300, **kw):
    """Run tools/test.py; returns the CompletedProcess, stdout and stderr merged.
    ``kw``: environment variables."""
    cmd = [sys.executable, TEST, str(config), str(checkpoint)]
    return subprocess.run(
        cmd + ['--work-dir', str(work_dir)] + list(args),
        env=env(**kw),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def state_dict(path):
    return safe_torch_load(str(path), map_location='cpu')['state_dict']


def assert_same_weights(a, b, exact=True, rtol=1e-4, atol=1e-6):
    a, b = state_dict(a), state_dict(b)
    assert a.keys() == b.keys()
    for key in a:
        if exact:
            assert torch.equal(a[key], b[key]), f'{key} differs'
        else:
            torch.testing.assert_close(
                a[key].float(), b[key].float(), rtol=rtol, atol=atol, msg=key
            )


SLURM_TRAIN = osp.join(REPO, 'tools', 'slurm_train.sh')

# Stand-ins for Slurm's commands, put first on PATH. Each call appends a line to
# $FAKE_CALLS. srun, by $FAKE_SRUN: 'codes' exits with the next of $FAKE_SRUN_CODES (one per
# call); 'wait' touches $FAKE_READY and waits for SIGUSR1 / SIGTERM, which it records
# before exiting 75; 'exec' runs the training command itself (srun's options dropped, one
# process: --launcher none).
_FAKE_SRUN = r"""#!/usr/bin/env bash
echo "srun $*" >> "$FAKE_CALLS"
case $FAKE_SRUN in
codes)
    n=$(grep -c '^srun ' "$FAKE_CALLS")
    codes=($FAKE_SRUN_CODES)
    exit "${codes[$((n - 1))]}" ;;
wait)
    trap 'echo "srun got USR1" >> "$FAKE_CALLS"; exit 75' USR1
    trap 'echo "srun got TERM" >> "$FAKE_CALLS"; exit 75' TERM
    touch "$FAKE_READY"
    while true; do sleep 0.05; done ;;
exec)
    while [[ $# -gt 0 && $1 == -* ]]; do
        [[ $1 == -p ]] && shift
        shift
    done
    args=()
    for a in "$@"; do
        [[ $a == --launcher=slurm ]] && a=--launcher=none
        args+=("$a")
    done
    exec "${args[@]}" ;;
esac
"""
_FAKE_SCONTROL = r"""#!/usr/bin/env bash
echo "scontrol $*" >> "$FAKE_CALLS"
exit "${FAKE_SCONTROL_RC:-0}"
"""


def fake_slurm(folder):
    """A folder with fake ``srun`` and ``scontrol``; returns the environment variables
    (PATH, FAKE_CALLS, FAKE_READY) that make tools/slurm_train.sh use them."""
    folder = str(folder)
    bin_dir = osp.join(folder, 'bin')
    os.makedirs(bin_dir, exist_ok=True)
    for name, text in (('srun', _FAKE_SRUN), ('scontrol', _FAKE_SCONTROL)):
        path = osp.join(bin_dir, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, 0o755)
    return dict(
        PATH=bin_dir + os.pathsep + os.environ['PATH'],
        FAKE_CALLS=osp.join(folder, 'calls.txt'),
        FAKE_READY=osp.join(folder, 'ready'),
        PYTHON=sys.executable,
    )


def calls(fake):
    """The lines the fake Slurm commands recorded."""
    if not osp.exists(fake['FAKE_CALLS']):
        return []
    with open(fake['FAKE_CALLS']) as f:
        return f.read().splitlines()
