"""Write synthetic scenes in MTAN's NYUv2 layout, to exercise the real NYUv2 loader end to end.

    python tools/dataset_converters/synthetic_to_nyuv2.py OUT_DIR --num-train 16 --num-val 8

writes ``OUT_DIR/{train,val}/{image,label,depth,normal}/<i>.npy`` exactly as MTAN's NYUv2
files are stored: image H x W x 3 float32 in [0, 1], label H x W float32 class ids (the
synthetic scenes have no unlabelled pixel; ``--ignore-border N`` marks an N-pixel frame -1 =
ignore, as NYUv2's unlabelled borders), depth H x W x 1 float32 metres, normal H x W x 3 float32
unit vectors. Then e.g. ``--cfg-options train_dataloader.dataset.data_root=OUT_DIR`` on an NYUv2
config (the synthetic scenes have ``--num-classes`` classes, 13 by default as NYUv2).
Train and val scenes use seeds ``--seed`` and ``--seed + 1``.
"""

import argparse
import os
import os.path as osp

import numpy as np

from ctal_mm.datasets.synthetic import render_scene


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Synthetic scenes -> MTAN NYUv2 .npy layout'
    )
    parser.add_argument('out_dir', help='folder to write train/ and val/ into')
    parser.add_argument('--num-train', type=int, default=32)
    parser.add_argument('--num-val', type=int, default=8)
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=(288, 384),
        metavar=('H', 'W'),
        help='image size (NYUv2: 288 384)',
    )
    parser.add_argument('--num-classes', type=int, default=13)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--ignore-border',
        type=int,
        default=0,
        help='width of a frame of -1 (ignore) labels, 0 depth and 0 normals',
    )
    args = parser.parse_args(argv)
    if args.num_train < 1 or args.num_val < 1:
        parser.error('--num-train and --num-val must be >= 1')
    return args


def to_mtan(scene: dict, ignore_border: int = 0) -> dict:
    """A rendered scene as MTAN's NYUv2 arrays (image, label, depth, normal)."""
    label = scene['semseg'].astype(np.float32)
    depth = scene['depth'][..., None].astype(np.float32)
    normal = scene['normals'].astype(np.float32)
    if ignore_border > 0:
        frame = np.ones(label.shape, dtype=bool)
        b = ignore_border
        frame[b:-b, b:-b] = False
        label[frame] = -1
        depth[frame] = 0
        normal[frame] = 0
    return dict(
        image=scene['img'].astype(np.float32) / 255.0,
        label=label,
        depth=depth,
        normal=normal,
    )


def convert(
    out_dir: str,
    num_train: int,
    num_val: int,
    size=(288, 384),
    num_classes: int = 13,
    seed: int = 0,
    ignore_border: int = 0,
) -> None:
    """Write ``num_train`` / ``num_val`` scenes under ``out_dir/{train,val}``."""
    for split, count, split_seed in (
        ('train', num_train, seed),
        ('val', num_val, seed + 1),
    ):
        for folder in ('image', 'label', 'depth', 'normal'):
            os.makedirs(osp.join(out_dir, split, folder), exist_ok=True)
        for index in range(count):
            scene = render_scene(
                split_seed, index, size[0], size[1], num_classes
            )
            for folder, array in to_mtan(scene, ignore_border).items():
                np.save(
                    osp.join(out_dir, split, folder, f'{index}.npy'), array
                )


def main(argv=None):
    args = parse_args(argv)
    convert(
        args.out_dir,
        args.num_train,
        args.num_val,
        tuple(args.size),
        args.num_classes,
        args.seed,
        args.ignore_border,
    )
    print(
        f'Wrote {args.num_train} train and {args.num_val} val scenes to '
        f'{args.out_dir} (MTAN NYUv2 layout).'
    )


if __name__ == '__main__':
    main()
