"""benchmark_synthetic.py renders scenes and prints a positive rate."""

import pytest
from repo_scripts import load_script


def test_prints_a_positive_rate(capsys):
    tool = load_script('tools/analysis_tools/benchmark_synthetic.py')
    tool.main(['--shape', '16', '24', '--count', '2'])
    out = capsys.readouterr().out
    rate = float(out.split()[0])
    assert rate > 0
    assert '16 x 24' in out


def test_refuses_no_scenes():
    tool = load_script('tools/analysis_tools/benchmark_synthetic.py')
    with pytest.raises(ValueError, match='count=0'):
        tool.benchmark(16, 24, 0)
