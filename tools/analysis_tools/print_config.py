"""Print the full config after _base_ inheritance and --cfg-options: print_config.py CONFIG."""

import argparse

from ctal_mm.engine.config_loading import add_cfg_options_argument, load_config


def main():
    parser = argparse.ArgumentParser(description='Print the whole config')
    parser.add_argument('config', help='config file path')
    add_cfg_options_argument(parser)
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')


if __name__ == '__main__':
    main()
