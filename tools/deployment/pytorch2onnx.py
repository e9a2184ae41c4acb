"""Export a multitask model to ONNX at its input size, and check it against PyTorch.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out model.onnx [--verify]

The graph takes ``image``: 1 x 3 x H x W float32 RGB on the 0..255 scale (the data
preprocessor's normalisation is inside), and gives one output per task, named after it, at the
input size: segmentation class probabilities (softmax; argmax for the labels), depth in metres,
unit normals, edge / saliency probabilities. ``--verify`` runs the file with onnxruntime on the
CPU and prints, per task, the largest difference to PyTorch relative to the largest PyTorch
value; it fails above ``--tolerance``.
"""

import argparse
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ctal_mm.apis import init_model, model_input_size
from ctal_mm.engine.config_loading import add_cfg_options_argument
from ctal_mm.models.test_time_aug import soft_prediction


class OnnxExportWrapper(nn.Module):
    """image (B x 3 x H x W RGB, 0..255) -> one soft map per task, in task order."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.tasks = list(model.tasks)
        self.kinds = [model.tasks[t]['kind'] for t in self.tasks]

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        pre = self.model.data_preprocessor
        if getattr(pre, '_normalize', False):
            image = (image - pre.mean) / pre.std
        final = self.model.decode(image)['final']
        return tuple(
            soft_prediction(kind, final[task])
            for task, kind in zip(self.tasks, self.kinds)
        )


def export_onnx(
    model: nn.Module,
    out_file: str,
    input_size: Sequence[int],
    opset: int = 17,
) -> List[str]:
    """Write ``model`` (eval mode, CPU) to ``out_file``; returns the output names."""
    wrapper = OnnxExportWrapper(model).eval()
    image = torch.zeros(1, 3, *input_size)
    with torch.no_grad():
        torch.onnx.export(
            wrapper,
            (image,),
            out_file,
            input_names=['image'],
            output_names=wrapper.tasks,
            opset_version=opset,
            dynamo=False,
        )
    return wrapper.tasks


def verify_onnx(
    model: nn.Module,
    onnx_file: str,
    input_size: Sequence[int],
    seed: int = 0,
) -> Dict[str, float]:
    """Per task: max |onnxruntime - PyTorch| / max |PyTorch| on a random image."""
    import onnxruntime

    wrapper = OnnxExportWrapper(model).eval()
    generator = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (1, 3, *input_size), generator=generator)
    image = image.float()
    with torch.no_grad():
        expected = [t.numpy() for t in wrapper(image)]
    session = onnxruntime.InferenceSession(
        onnx_file, providers=['CPUExecutionProvider']
    )
    got = session.run(None, {'image': image.numpy()})
    errors = {}
    for task, want, have in zip(wrapper.tasks, expected, got):
        if want.shape != have.shape:
            raise AssertionError(
                f'{onnx_file}: output {task!r} is {have.shape}, PyTorch gives '
                f'{want.shape}.'
            )
        scale = max(float(np.abs(want).max()), 1e-12)
        errors[task] = float(np.abs(have - want).max()) / scale
    return errors


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a multitask model to ONNX'
    )
    parser.add_argument('config', help='config file')
    parser.add_argument(
        'checkpoint', nargs='?', help='checkpoint (random weights if omitted)'
    )
    parser.add_argument('--out', required=True, help='the .onnx file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='input size (default: the size the config trains at)',
    )
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument(
        '--verify',
        action='store_true',
        help='compare onnxruntime (CPU) with PyTorch on every task',
    )
    parser.add_argument(
        '--tolerance',
        type=float,
        default=1e-4,
        help='largest relative difference --verify accepts',
    )
    add_cfg_options_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> Optional[Dict[str, float]]:
    args = parse_args(argv)
    model = init_model(args.config, args.checkpoint, 'cpu', args.cfg_options)
    size = tuple(args.shape) if args.shape else model_input_size(model)
    if size is None:
        sys.exit(
            f'{args.config} does not fix an input size; pass --shape H W.'
        )
    tasks = export_onnx(model, args.out, size, args.opset)
    print(f'{args.out}: input image 1x3x{size[0]}x{size[1]}, outputs {tasks}')
    if not args.verify:
        return None
    errors = verify_onnx(model, args.out, size)
    print('task        max relative difference (onnxruntime CPU vs PyTorch)')
    for task, error in errors.items():
        print(f'{task:<12}{error:.3g}')
    worst = max(errors.values())
    if worst > args.tolerance:
        sys.exit(
            f'onnxruntime differs from PyTorch by {worst:.3g} (relative) > '
            f'--tolerance {args.tolerance:g}.'
        )
    return errors


if __name__ == '__main__':
    main()
