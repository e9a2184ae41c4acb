"""Two CPU processes (gloo) train like one process with the same global batch; a worker that
dies, fails or hangs makes the job exit non-zero naming the rank and the cause."""

import json
import re

import pytest
import torch
from reliability_helpers import assert_same_weights, train, write_config

# no augmentation: each process draws its own random numbers, one process draws them in
# another order; what is compared here is the data-parallel arithmetic
NO_FLIP = "pipeline=[dict(type='LoadSyntheticScene'), dict(type='PackMultiTaskInputs')]"


# In float64: in float32 this tiny model's gradients are
# ill-conditioned (float32 vs float64 differ by ~10% in some layers, whatever the number of
# processes), and a process convolving 2 images rounds differently from one convolving 4.
FLOAT64 = "type='Float64MultiTaskEncoderDecoder'"


def _losses(work, rank):
    with open(work / f'losses_rank{rank}.jsonl') as f:
        losses = [json.loads(line)['loss'] for line in f]
    return torch.tensor(losses, dtype=torch.float64)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('dist')
    return write_config(
        root / 'tiny.py', max_epochs=2, extra="sync_bn = 'torch'"
    )


# This toy model (32x32 scenes: HRNet's lowest branches are 2x2 and 1x1, so SyncBN normalises
# a handful of values) amplifies rounding differences several hundred times per step: the
# all-reduce sums two halves where one process sums four images, and after the first Adam step
# the weights differ by ~2e-9, after the fourth by ~7e-4 (measured with both runs dumping their
# weights every iteration). So the weights are compared after the first step, where a missing
# all-reduce or a non-synchronised BN changes whole updates, and the losses of all four steps
# (both epochs, so the shuffled second epoch's union batches) to 1e-6.
def test_two_processes_match_one_with_the_global_batch(tmp_path):
    root = tmp_path
    # 8 scenes, global batch 4: one process with batch 4, or two with batch 2 each
    common = dict(
        max_epochs=2,
        num_samples=8,
        train_dataset=NO_FLIP,
        model=FLOAT64,
        extra="sync_bn = 'torch'\n"
        'default_hooks = dict(checkpoint=dict(by_epoch=False, interval=1, max_keep_ckpts=4))',
    )
    one = write_config(root / 'one.py', batch_size=4, **common)
    two = write_config(root / 'two.py', batch_size=2, **common)
    proc = train(one, root / 'one')
    assert proc.returncode == 0, proc.stdout[-3000:]
    proc = train(two, root / 'two', nproc=2)
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert (
        'CPUDistributedDataParallel' in proc.stdout
    )  # BatchNorm synchronised

    single = _losses(root / 'one', 0)
    mean = (_losses(root / 'two', 0) + _losses(root / 'two', 1)) / 2
    assert len(single) == len(mean) == 4
    torch.testing.assert_close(mean, single, rtol=1e-6, atol=0)
    assert_same_weights(
        root / 'one' / 'iter_1.pth',
        root / 'two' / 'iter_1.pth',
        exact=False,
        rtol=1e-6,
        atol=1e-7,
    )


def _assert_names_rank_1(output):
    assert re.search(r'rank\s*:\s*1 \(local_rank: 1\)', output), output[-3000:]


def test_a_killed_worker_fails_the_job_with_its_rank(tiny, tmp_path):
    proc = train(
        tiny,
        tmp_path / 'w',
        nproc=2,
        fault='kill_in_step:1',
        CTAL_FAULT_RANK='1',
        timeout=180,
    )
    assert proc.returncode != 0
    _assert_names_rank_1(proc.stdout)
    assert 'Signal 9 (SIGKILL)' in proc.stdout


def test_a_failing_worker_reports_its_exception(tiny, tmp_path):
    proc = train(
        tiny,
        tmp_path / 'w',
        nproc=2,
        fault='raise_in_step:1',
        CTAL_FAULT_RANK='1',
        timeout=180,
    )
    assert proc.returncode != 0
    _assert_names_rank_1(proc.stdout)
    assert 'RuntimeError: injected fault' in proc.stdout


def test_a_hung_worker_times_out_instead_of_hanging_the_job(tiny, tmp_path):
    proc = train(
        tiny,
        tmp_path / 'w',
        '--cfg-options',
        'env_cfg.dist_cfg.timeout=5',
        nproc=2,
        fault='hang_in_step:1',
        CTAL_FAULT_RANK='1',
        timeout=180,
    )
    assert proc.returncode != 0
    # rank 0 gives up waiting for rank 1 in the gradient all-reduce
    assert re.search(r'rank\s*:\s*0', proc.stdout), proc.stdout[-3000:]
    assert re.search(r'[Tt]imed? ?out', proc.stdout), proc.stdout[-3000:]
