"""tools/analysis_tools/get_flops.py counts what the model computes."""

import os.path as osp

from repo_scripts import REPO, load_script

DEMO = osp.join(
    REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-4e_synthetic-96x128.py'
)


def _load_tool():
    return load_script('tools/analysis_tools/get_flops.py')


def test_counts_parameters_and_at_least_the_affinity_products(capsys):
    tool = _load_tool()
    # no --shape: the size CTAL is built for, 4 x its 8 x 8 feature size
    flops, params, rows = tool.main(
        [DEMO, '--cfg-options', 'model.decoder.affinity.feature_size=(8,8)']
    )
    out = capsys.readouterr().out
    assert 'Input shape: (3, 32, 32)' in out
    assert f'Params: {params:,}' in out
    tasks, positions, channels = 3, 8 * 8, 128  # semseg, depth, normals
    # per task: affinity X^T X and the attended values V M^T, N*N*C each
    assert flops > tasks * 2 * positions**2 * channels
    # the parts: backbone, neck, initial heads, affinity, final heads
    parts = {name: (p, f) for name, p, f in rows}
    assert list(parts) == [
        'backbone',
        'neck',
        'decoder.initial_heads',
        'decoder.affinity',
        'decoder.final_heads',
        'other',
    ]
    assert sum(p for p, _ in parts.values()) == params
    assert sum(f for _, f in parts.values()) == flops
    assert parts['decoder.affinity'][1] > tasks * 2 * positions**2 * channels
    bigger, _, _ = tool.main(
        [
            DEMO,
            '--shape',
            '64',
            '64',
            '--cfg-options',
            'model.decoder.affinity.feature_size=(16,16)',
        ]
    )
    # the N x N products grow with N^2: at least 4x the FLOPs for 4x pixels
    assert bigger > 4 * flops
