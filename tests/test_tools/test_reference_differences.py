"""tools/analysis_tools/reference_differences.py prints the tables docs/reproduce.md quotes."""

import argparse

from repo_scripts import load_script

script = load_script('tools/analysis_tools/reference_differences.py')


def _rows(text):
    return [line for line in text.splitlines() if line.startswith('| ')]


def test_parts_and_normals_tables(capsys):
    script.measure_parts(argparse.Namespace(scenes=1, crops=2))
    header, row = _rows(capsys.readouterr().out)
    assert 'ignored by the reference' in header
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[0] == '1 of 1' and cells[1] == '2'
    assert 0 < float(cells[3]) <= 1  # a share of the labelled pixels
    script.measure_normals(argparse.Namespace(scenes=1))
    rows = _rows(capsys.readouterr().out)
    stored = [c.strip() for c in rows[1].strip('|').split('|')]
    mean, top = (float(x) for x in stored[0].split('/'))
    # 8-bit decoding: within half a quantisation step per channel of unit length
    assert 0 < mean <= top < 3**0.5 / 255
