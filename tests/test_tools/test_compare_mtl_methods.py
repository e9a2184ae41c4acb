"""tools/analysis_tools/compare_mtl_methods.py: method overrides and the metrics it reads."""

import json

import pytest
from repo_scripts import load_script


def _tool():
    return load_script('tools/analysis_tools/compare_mtl_methods.py')


def test_each_kind_of_method_sets_its_overrides():
    tool = _tool()
    assert tool.method_options('fixed') == []
    assert tool.method_options('FAMO') == [
        'model.loss_weighting.type=FAMOWeighting'
    ]
    assert tool.method_options('CAGrad') == [
        'model.aggregator.type=CAGrad',
        'optim_wrapper.type=JacobianOptimWrapper',
        'model.aggregator.c=0.4',
    ]
    assert tool.method_options('MGDA-features')[-1] == (
        'model.aggregator.jacobian=features'
    )
    with pytest.raises(ValueError, match='NAME-features'):
        tool.method_options('MGDA-feat')


def test_the_last_validation_entry_is_read(tmp_path):
    run = tmp_path / 'UPGrad' / '20250101_000000' / 'vis_data'
    run.mkdir(parents=True)
    entries = [
        {'lr': 1e-3, 'loss': 2.0, 'step': 4},
        {'semseg/mIoU': 0.1, 'depth/abs_err': 2.0, 'step': 1},
        {'lr': 1e-3, 'loss': 1.5, 'step': 8},
        {'semseg/mIoU': 0.2, 'depth/abs_err': 1.5, 'step': 2},
    ]
    (run / 'scalars.json').write_text(
        '\n'.join(json.dumps(e) for e in entries)
    )
    metrics = _tool().last_metrics(str(tmp_path / 'UPGrad'))
    assert metrics == {'semseg/mIoU': 0.2, 'depth/abs_err': 1.5}
    assert _tool().last_metrics(str(tmp_path / 'missing')) is None
