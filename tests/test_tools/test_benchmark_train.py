"""tools/analysis_tools/benchmark_train.py: variants side by side."""

import json
import os.path as osp
import weakref

import torch
from repo_scripts import REPO, load_script
from torch._subclasses.fake_tensor import FakeTensorMode

DEMO = osp.join(
    REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-4e_synthetic-96x128.py'
)


def _load_tool():
    return load_script('tools/analysis_tools/benchmark_train.py')


def test_cpu_tensor_memory_is_the_highest_point_of_a_step():
    tool = _load_tool()
    held = []

    def step():
        a = torch.ones(2**18)  # 1 MiB
        b = torch.ones(2**20)  # 4 MiB, while a lives: 5 MiB
        del a, b
        held.append(torch.ones(2**19))  # 2 MiB, kept after the step

    # torch.compile leaves tensors without data about: not counted
    fake = FakeTensorMode().from_tensor(torch.ones(2**20))
    functional = torch._to_functional_tensor(torch.ones(2**20))
    # nor does a proxy whose object is gone stop the count
    gone = torch.nn.Linear(1, 1)
    proxy = weakref.proxy(gone)
    del gone
    before = tool._live_cpu_tensor_bytes()
    rise = tool._cpu_step_tensor_rise(step)
    assert 5 * 2**20 <= rise < 6 * 2**20
    assert tool._live_cpu_tensor_bytes() - before >= 2 * 2**20
    del fake, functional, proxy


def test_variants_run_side_by_side_on_the_same_function(tmp_path, capsys):
    tool = _load_tool()
    small = ['model.decoder.affinity.feature_size=[8,8]']
    out = tmp_path / 'results.json'
    code = tool.main(
        [
            DEMO,
            '--shape', '32', '32',
            '--iters', '1',
            '--warmup', '0',
            '--rounds', '2',
            '--threads', '1',
            '--json', str(out),
            '--variant', 'plain', *small,
            'model.decoder.affinity.implementation=plain',
            '--variant', 'factored', *small,
            'model.decoder.affinity.implementation=factored',
        ]
    )  # fmt: skip
    assert code == 0
    plain, factored = json.loads(out.read_text())
    assert (plain['name'], factored['name']) == ('plain', 'factored')
    assert plain['input_size'] == [32, 32]
    # same weights, same batch: the same loss and gradient
    assert abs(plain['loss'] - factored['loss']) < 1e-5
    assert abs(factored['grad_norm'] / plain['grad_norm'] - 1) < 1e-5
    for result in (plain, factored):
        assert result['step_s'] > 0
        # two rounds, alternating: one timed step from each
        assert len(result['times']) == len(result['round_s']) == 2
        # the process holds the libraries besides the tensors
        assert 0 < result['tensor_peak_bytes'] < result['peak_bytes']
    table = capsys.readouterr().out
    assert 'tensors GiB' in table
    assert table.splitlines()[-2].startswith('plain')


def test_the_gramian_path_times_beside_fixed_weighting(tmp_path):
    # the Gramian path hooks the modules: the function is still computed first
    tool = _load_tool()
    small = ['model.decoder.affinity.feature_size=[8,8]']
    method = [
        'optim_wrapper.type=JacobianOptimWrapper',
        'model.aggregator.type=UPGrad',
    ]
    out = tmp_path / 'results.json'
    code = tool.main(
        [
            DEMO,
            '--shape', '32', '32',
            '--iters', '1',
            '--warmup', '0',
            '--threads', '1',
            '--json', str(out),
            '--variant', 'fixed', *small,
            '--variant', 'upgrad-gramian', *small, *method,
            'model.aggregator.gramian=true',
        ]
    )  # fmt: skip
    assert code == 0
    fixed, gramian = json.loads(out.read_text())
    assert gramian['step_s'] > 0
    assert abs(gramian['loss'] - fixed['loss']) < 1e-5
    assert abs(gramian['grad_norm'] / fixed['grad_norm'] - 1) < 1e-5
