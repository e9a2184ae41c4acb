"""Print the full config after _base_ inheritance and --cfg-options: print_config.py CONFIG."""

import argparse

from mmengine import DictAction

from ctal_mm.engine.config_loading import load_config


def main():
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings, xxx=yyy pairs merged into the config',
    )
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')


if __name__ == '__main__':
    main()
