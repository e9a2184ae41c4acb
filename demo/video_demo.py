"""Predict every task on each frame of a video; write an mp4 of the task maps side by side.

    python demo/video_demo.py VIDEO CONFIG CHECKPOINT --out FILE.mp4 [--device cpu] [--tta]

Frames go through MultiTaskInferencer in batches; each output frame is the input frame and
one colour picture per task (segmentation palette, depth colour map, normals RGB, gray
probabilities) in a row, at the video's size, written with OpenCV's VideoWriter.
"""

import argparse
from typing import List

import cv2
import numpy as np
from rich.progress import track

from ctal_mm.apis import MultiTaskInferencer
from ctal_mm.visualization.prediction_files import task_palette
from ctal_mm.visualization.task_drawers import (
    DrawStyle,
    draw_depth,
    draw_gray_probability,
    draw_normals,
)


def task_pictures(inferencer, frame_bgr: np.ndarray, pred: dict) -> List:
    """The frame and one RGB picture per task, each the frame's size."""
    pictures = [frame_bgr[..., ::-1]]
    for task, spec in inferencer.model.tasks.items():
        data = pred[task]
        kind = spec['kind']
        if kind == 'segmentation':
            palette = task_palette(
                task, spec['channels'], inferencer.dataset_meta
            )
            pictures.append(palette[data[0]])
            continue
        drawer = {'depth': draw_depth, 'normals': draw_normals}.get(
            kind, draw_gray_probability
        )
        pictures.append(
            drawer(None, {'pred': data}, DrawStyle(task)).tiles['pred']
        )
    return pictures


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('video', help='input video file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='output .mp4 file')
    parser.add_argument('--device', default=None, help='e.g. cpu, cuda:0')
    parser.add_argument('--tta', action='store_true', help='flip TTA')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument(
        '--fourcc', default='mp4v', help='codec of the output video'
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    capture = cv2.VideoCapture(args.video)
    if not capture.isOpened():
        raise SystemExit(f'{args.video}: OpenCV cannot open this video.')
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    inferencer = MultiTaskInferencer(
        args.config,
        args.checkpoint,
        device=args.device,
        tta=args.tta,
        show_progress=False,
    )
    writer = None
    written = 0

    def frames():
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame

    def flush(batch):
        nonlocal writer, written
        preds = inferencer(batch, batch_size=len(batch))['predictions']
        for frame, pred in zip(batch, preds):
            row = np.concatenate(task_pictures(inferencer, frame, pred), 1)
            row = np.ascontiguousarray(row[..., ::-1])
            if writer is None:
                height, width = row.shape[:2]
                writer = cv2.VideoWriter(
                    args.out,
                    cv2.VideoWriter_fourcc(*args.fourcc),
                    fps,
                    (width, height),
                )
                if not writer.isOpened():
                    raise SystemExit(
                        f'{args.out}: OpenCV cannot write this video (try '
                        '--fourcc XVID and an .avi name).'
                    )
            writer.write(row)
            written += 1

    batch = []
    for frame in track(frames(), description='Frames', total=total):
        batch.append(frame)
        if len(batch) == args.batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    capture.release()
    if writer is not None:
        writer.release()
    print(f'{written} frames -> {args.out}')
    return written


if __name__ == '__main__':
    main()
