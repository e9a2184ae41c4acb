"""Predict every task on an image or a folder of images and write the files.

    python demo/image_demo.py IMG_OR_DIR CONFIG CHECKPOINT --out-dir DIR [--device cpu] [--tta]

Each image is brought to the model's input size (from the config) and every prediction
back to the image's size; the files per image and task are listed in docs/inference.md.
Unreadable files in a folder are skipped and counted.
"""

import argparse
import os.path as osp
import sys

from ctal_mm.apis import MultiTaskInferencer
from ctal_mm.datasets.transforms import RESIZE_MODES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('img', help='an image file or a folder of images')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out-dir', required=True, help='where the files are written'
    )
    parser.add_argument('--device', default=None, help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='average with the prediction of the mirrored image',
    )
    parser.add_argument(
        '--resize-mode',
        choices=RESIZE_MODES,
        default='resize',
        help='stretch to the input size, or keep the aspect ratio and pad',
    )
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument(
        '--show', action='store_true', help='show each panel in a window'
    )
    parser.add_argument(
        '--wait-time', type=float, default=0, help='seconds per window'
    )
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        sys.exit(
            f'{args.checkpoint}: no such checkpoint (for the demo model run '
            '`make demo` first: it writes work_dirs/demo/final.pth).'
        )
    inferencer = MultiTaskInferencer(
        args.config,
        args.checkpoint,
        device=args.device,
        resize_mode=args.resize_mode,
        tta=args.tta,
    )
    result = inferencer(
        args.img,
        out_dir=args.out_dir,
        batch_size=args.batch_size,
        show=args.show,
        wait_time=args.wait_time,
    )
    print(
        f'{len(result["predictions"])} image(s) predicted, files in '
        f'{args.out_dir}; {len(result["skipped"])} skipped'
    )
    return result


if __name__ == '__main__':
    main()
