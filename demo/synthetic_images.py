"""Write a few synthetic scenes as PNG photos, to try the inference demos on.

    python demo/synthetic_images.py OUT_DIR [--num 4] [--size 240 320] [--seed 2]

The scenes are rendered like the demo's training data but from another seed (not seen in
training), at any size: the inferencer brings them to the model's size and back.
"""

import argparse
import os
import os.path as osp

import cv2

from ctal_mm.datasets.synthetic import render_scene


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num', type=int, default=4)
    parser.add_argument('--size', type=int, nargs=2, default=(240, 320))
    parser.add_argument('--seed', type=int, default=2)
    args = parser.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    paths = []
    for index in range(args.num):
        scene = render_scene(args.seed, index, *args.size)
        path = osp.join(args.out_dir, f'scene_{index:02d}.png')
        cv2.imwrite(path, scene['img'][..., ::-1])
        paths.append(path)
    print(
        f'{len(paths)} scenes of {args.size[0]}x{args.size[1]} in {args.out_dir}'
    )
    return paths


if __name__ == '__main__':
    main()
