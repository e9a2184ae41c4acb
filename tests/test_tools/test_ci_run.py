""".ci/run with a fake ``make`` on PATH: it runs the README's test command for both stacks
(default first), times each, always runs both, and fails when either fails, with the failing
run's pytest line last."""

import os
import os.path as osp
import subprocess

from repo_scripts import REPO

# Records its arguments; exits with $FAKE_FAIL_<target>_<stack> (default 0) and, for `test`,
# prints a pytest closing line first (the stacks' in pytest's two forms: short, over a minute).
_FAKE_MAKE = """#!/usr/bin/env bash
target="$1"; shift
stack="${STACK:-default}"
for arg in "$@"; do case "$arg" in STACK=*) stack="${arg#STACK=}" ;; esac; done
echo "$target $stack" >> "$FAKE_CALLS"
var="FAKE_FAIL_${target}_${stack}"
code="${!var:-0}"
took="0.40s"; [[ "$stack" == openmmlab ]] && took="61.50s (0:01:01)"
if [[ "$target" == test ]]; then
  if ((code)); then echo "1 failed, 2 passed in $took"
  else echo "3 passed in $took"; fi
fi
exit "$code"
"""


def _ci_run(tmp_path, **fails):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    make = bin_dir / 'make'
    make.write_text(_FAKE_MAKE)
    make.chmod(0o755)
    env = dict(
        os.environ,
        PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
        FAKE_CALLS=str(tmp_path / 'calls.txt'),
        CI_LOG_DIR=str(tmp_path / 'logs'),
        STACK='openmmlab',  # a caller's STACK must not change the first run
        **fails,
    )
    proc = subprocess.run(
        ['bash', osp.join(REPO, '.ci', 'run')],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    calls = (tmp_path / 'calls.txt').read_text().splitlines()
    return proc, calls


def test_both_stacks_pass_in_order_with_their_times(tmp_path):
    proc, calls = _ci_run(tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert calls == [
        'env default',
        'test default',
        'env openmmlab',
        'test openmmlab',
    ]
    lines = proc.stdout.splitlines()
    assert lines[-4].startswith('[.ci/run] make test: passed; environment ')
    assert lines[-3] == '3 passed in 0.40s'
    assert lines[-2].startswith(
        '[.ci/run] make test STACK=openmmlab: passed; environment '
    )
    assert ', tests ' in lines[-2]
    assert lines[-1] == '3 passed in 61.50s (0:01:01)'
    assert (
        (tmp_path / 'logs' / 'openmmlab.log')
        .read_text()
        .endswith('3 passed in 61.50s (0:01:01)\n')
    )


def test_a_failing_default_stack_fails_the_run_after_both_ran(tmp_path):
    proc, calls = _ci_run(tmp_path, FAKE_FAIL_test_default='1')
    assert proc.returncode != 0, proc.stdout
    assert calls[-1] == 'test openmmlab'
    lines = proc.stdout.splitlines()
    # the failing run's summary closes the output
    assert lines[-2].startswith('[.ci/run] make test: FAILED (exit 1)')
    assert lines[-1] == '1 failed, 2 passed in 0.40s'


def test_a_failing_original_stack_fails_the_run(tmp_path):
    proc, _ = _ci_run(tmp_path, FAKE_FAIL_test_openmmlab='2')
    assert proc.returncode != 0, proc.stdout
    assert proc.stdout.splitlines()[-1] == (
        '1 failed, 2 passed in 61.50s (0:01:01)'
    )


def test_an_environment_that_cannot_be_made_fails_without_testing(tmp_path):
    proc, calls = _ci_run(tmp_path, FAKE_FAIL_env_openmmlab='1')
    assert proc.returncode != 0, proc.stdout
    assert 'test openmmlab' not in calls
    assert proc.stdout.splitlines()[-1].startswith(
        'the environment could not be made, tests not run'
    )
