"""dump_configs.py: every shipped config resolves to model, dataloader and evaluator settings,
and the dump is the same from one run to the next (so a diff of two dumps shows changes only)."""

import json
import os.path as osp

from repo_scripts import REPO, load_script

CONFIGS = osp.join(REPO, 'configs')


def test_every_shipped_config_has_the_dumped_settings():
    tool = load_script('tools/analysis_tools/dump_configs.py')
    paths = tool.shipped_configs(CONFIGS)
    assert len(paths) >= 30
    assert not any('_base_' in p for p in paths)
    for path in paths:
        settings = tool.config_settings(path)
        assert set(settings) == set(tool.KEYS), path
        for key in tool.KEYS:
            assert isinstance(settings[key], dict), (path, key)
        assert settings['model']['type'], path
        assert settings['val_dataloader']['dataset']['type'], path


def test_dump_is_deterministic_and_lists_the_state_dict(tmp_path):
    tool = load_script('tools/analysis_tools/dump_configs.py')
    path = osp.join(
        CONFIGS, 'ctal', 'ctal_hrnet18s_1xb8-4e_synthetic-96x128.py'
    )
    first = tool.dump(path, CONFIGS, str(tmp_path / 'a'), state_dict=True)
    second = tool.dump(path, CONFIGS, str(tmp_path / 'b'), state_dict=True)
    assert first.endswith(
        osp.join('a', 'ctal', 'ctal_hrnet18s_1xb8-4e_synthetic-96x128.json')
    )
    with open(first) as f:
        text = f.read()
    with open(second) as f:
        assert f.read() == text
    record = json.loads(text)
    assert record['model']['type'] == 'MultiTaskEncoderDecoder'
    shapes = record['state_dict']
    assert shapes and all(isinstance(s, list) for s in shapes.values())
