"""Dump the settings every shipped config gives, one JSON file per config, to compare two trees.

    python tools/analysis_tools/dump_configs.py OUT_DIR [--configs configs] [--state-dict]

For each config under ``--configs`` (``_base_`` skipped) it writes ``OUT_DIR/<dir>/<name>.json``
holding the ``model``, ``train/val/test_dataloader`` and ``val/test_evaluator`` settings
as sorted JSON, as ``Config.fromfile`` reads them (the dataset base configs derive the model's,
the loaders' and the evaluators' task settings in the file). ``--state-dict`` also builds
each model (from scratch: no pretrained file is read) and lists its parameter and buffer
names with their shapes, the part a checkpoint must match.
Run it before and after a restructuring and ``diff -r`` the two directories.
"""

import argparse
import glob
import json
import os
import os.path as osp

from ctal_mm.engine.config_loading import load_config

KEYS = (
    'model',
    'train_dataloader',
    'val_dataloader',
    'test_dataloader',
    'val_evaluator',
    'test_evaluator',
)


def shipped_configs(root):
    """Every config file under ``root`` but the ``_base_`` parts, sorted."""
    paths = glob.glob(osp.join(root, '**', '*.py'), recursive=True)
    return sorted(p for p in paths if f'{os.sep}_base_{os.sep}' not in p)


def _plain(value):
    # Config values are ConfigDicts, tuples and lists; json needs plain containers and sorts keys
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def config_settings(path):
    """The settings of one config file as plain containers (``None`` where unset)."""
    cfg = load_config(path)
    return {key: _plain(cfg.get(key)) for key in KEYS}


def model_tensors(path):
    """``{name: shape}`` of the parameters and buffers of the model one config builds."""
    from ctal_mm.registry import MODELS
    from ctal_mm.utils import register_all_modules

    register_all_modules()
    cfg = load_config(path)
    backbone = cfg.model.get('backbone')
    if isinstance(backbone, dict) and backbone.get('init_cfg'):
        backbone['init_cfg'] = (
            None  # the names and shapes do not depend on the init
        )
    model = MODELS.build(cfg.model)
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def dump(path, root, out_dir, state_dict=False):
    """Write the dump of config ``path`` (relative to ``root``) under ``out_dir``: its path."""
    record = config_settings(path)
    if state_dict:
        record['state_dict'] = model_tensors(path)
    rel = osp.splitext(osp.relpath(path, root))[0] + '.json'
    target = osp.join(out_dir, rel)
    os.makedirs(osp.dirname(target), exist_ok=True)
    with open(target, 'w') as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write('\n')
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'out_dir', help='directory the JSON files are written to'
    )
    parser.add_argument(
        '--configs', default='configs', help='config tree to dump'
    )
    parser.add_argument(
        '--state-dict',
        action='store_true',
        help='also build each model and list its state_dict names and shapes',
    )
    args = parser.parse_args(argv)
    paths = shipped_configs(args.configs)
    if not paths:
        raise SystemExit(f'no config files under {args.configs!r}')
    for path in paths:
        print(dump(path, args.configs, args.out_dir, args.state_dict))


if __name__ == '__main__':
    main()
