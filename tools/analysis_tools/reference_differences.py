"""Measure differences 12, 14, 15 and 16 of docs/reproduce.md on data built in the real formats.

The real datasets are not needed: the init is measured on the shipped models with random
inputs; the others on the built-in synthetic scenes rendered at PASCAL-Context's size
(375 x 500) and run through the shipped PASCAL transforms.

    python tools/analysis_tools/reference_differences.py init
    python tools/analysis_tools/reference_differences.py parts --scenes 100 --crops 5
    python tools/analysis_tools/reference_differences.py normals --scenes 40

Each prints one table (markdown) of the quantities docs/reproduce.md quotes.
"""

import argparse
import os.path as osp
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from ctal_mm.datasets.synthetic import render_scene
from ctal_mm.datasets.transforms import (
    MultiTaskIgnoreEmptyLabels,
    MultiTaskRandomCrop,
    MultiTaskRandomFlip,
    MultiTaskRandomResize,
    MultiTaskResize,
)
from ctal_mm.engine.config_loading import load_config
from ctal_mm.registry import MODELS
from ctal_mm.structures import MultiTaskDataSample, task_kind
from ctal_mm.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
INIT_CASES = {
    # name: (config, shrunk input (h, w), CTAL feature stride or None)
    'CTAL NYUv2': (
        'configs/ctal/ctal_hrnet18s_1xb8-200e_nyuv2-288x384.py',
        (64, 96),
        4,
    ),
    'HPS NYUv2': (
        'configs/baselines/hps_hrnet18s_1xb8-200e_nyuv2-288x384.py',
        (64, 96),
        None,
    ),
    'CTAL PASCAL': (
        'configs/ctal/ctal_swinv2s_1xb8-70e_pascal-context-512x512.py',
        (64, 64),
        32,
    ),
    'HPS PASCAL': (
        'configs/baselines/hps_swinv2s_1xb8-70e_pascal-context-512x512.py',
        (64, 64),
        None,
    ),
}
PASCAL_SIZE = (375, 500)


# ------------------------------------------------------------------------ 12
def _shrunk(config, size, stride, layer_init, seed):
    cfg = load_config(osp.join(ROOT, config))
    cfg.model.backbone.init_cfg = (
        None  # no ImageNet file here: the same random backbone
    )
    cfg.model.layer_init = layer_init
    if 'swin' in config:
        cfg.model.backbone.pad_small_map = True
    if stride is not None:
        cfg.model.decoder.affinity.feature_size = (
            size[0] // stride,
            size[1] // stride,
        )
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _batch(model, size, seed):
    g = torch.Generator().manual_seed(seed)
    B, (H, W) = 2, size
    inputs = torch.rand(B, 3, H, W, generator=g)
    samples = [MultiTaskDataSample() for _ in range(B)]
    for task, spec in model.tasks.items():
        kind = task_kind(spec['kind'])
        if kind.is_distance:
            gt = torch.rand(B, 1, H, W, generator=g) * 5 + 0.5
        elif kind.is_unit_vector:
            gt = F.normalize(torch.randn(B, 3, H, W, generator=g), dim=1)
        else:
            classes = spec['channels'] if kind.has_classes else 2
            gt = torch.randint(0, classes, (B, 1, H, W), generator=g)
        for i, sample in enumerate(samples):
            sample.set_gt(task, gt[i])
    return inputs, samples


def _weight_std(model, prefix):
    stds = {}
    for name, m in model.named_modules():
        if name.startswith(prefix) and isinstance(
            m, (torch.nn.modules.conv._ConvNd, torch.nn.Linear)
        ):
            stds[name] = m.weight.detach().std().item()
    return stds


def _grad_norm(model, backbone):
    total = outside = 0.0
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        sq = p.grad.detach().pow(2).sum().item()
        total += sq
        if not name.startswith(backbone):
            outside += sq
    return total**0.5, outside**0.5


def measure_init(args):
    print(
        '| model | layer std ratio kaiming/reference: neck | decoder (median, max) '
        '| loss reference -> kaiming | grad norm reference -> kaiming (outside backbone) |'
    )
    print('|---|---|---|---|---|')
    for name, (config, size, stride) in INIT_CASES.items():
        stats = {
            k: dict(loss=[], grad=[], out=[]) for k in ('reference', 'kaiming')
        }
        ratios = {}
        backbone = 'backbone.backbones' if 'stl' in config else 'backbone'
        for seed in range(args.seeds):
            models = {}
            for layer_init in ('reference', 'kaiming'):
                model = _shrunk(config, size, stride, layer_init, seed)
                model.train()
                inputs, samples = _batch(model, size, seed)
                torch.manual_seed(seed)
                loss = sum(model.loss(inputs, samples).values())
                loss.backward()
                grad, out = _grad_norm(model, backbone)
                stats[layer_init]['loss'].append(loss.item())
                stats[layer_init]['grad'].append(grad)
                stats[layer_init]['out'].append(out)
                models[layer_init] = model
            if seed == 0:
                for part in ('neck', 'decoder'):
                    ref = _weight_std(models['reference'], part)
                    kai = _weight_std(models['kaiming'], part)
                    ratios[part] = [kai[k] / ref[k] for k in ref]
        med = {
            k: {m: statistics.median(v) for m, v in s.items()}
            for k, s in stats.items()
        }
        neck = (
            f'{statistics.median(ratios["neck"]):.2f}'
            if ratios.get('neck')
            else '-'
        )
        dec = ratios['decoder']
        print(
            f'| {name} | {neck} | {statistics.median(dec):.2f}, {max(dec):.2f} '
            f'| {med["reference"]["loss"]:.3f} -> {med["kaiming"]["loss"]:.3f} '
            f'| {med["reference"]["grad"]:.3g} -> {med["kaiming"]["grad"]:.3g} '
            f'({med["reference"]["out"]:.3g} -> {med["kaiming"]["out"]:.3g}) |'
        )
    print(
        f'(medians over {args.seeds} seeds; inputs '
        + ', '.join(f'{k} {v[1]}' for k, v in INIT_CASES.items())
        + ')'
    )


# ------------------------------------------------------------------------ 14
def _pascal_results(scene):
    return dict(
        img=scene['img'],
        img_shape=scene['img'].shape[:2],
        ori_shape=scene['img'].shape[:2],
        task_kinds=dict(
            semseg='segmentation',
            human_parts='segmentation',
            normals='normals',
        ),
        gt_semseg=scene['semseg'],
        gt_human_parts=scene['human_parts'],
        gt_normals=scene['normals'],
    )


def _has_parts(parts):
    return bool(((parts > 0) & (parts < 255)).any())


def measure_parts(args):
    # the shipped PASCAL training transforms up to the flip (config: _base_/datasets)
    resize = MultiTaskRandomResize(
        ratio_range=(0.5, 2.0), normals_interpolation='nearest'
    )
    crop = MultiTaskRandomCrop(crop_size=(512, 512), cat_max_ratio=0.75)
    flip = MultiTaskRandomFlip(prob=0.5)
    reference = MultiTaskIgnoreEmptyLabels(mode='after_crop')
    np.random.seed(0)
    images_with_parts = crops = changed = 0
    trained_pixels = {'full_image': 0, 'after_crop': 0}
    for index in range(args.scenes):
        scene = render_scene(0, index, *PASCAL_SIZE)
        if not _has_parts(scene['human_parts']):
            continue  # all-ignore under both rules
        images_with_parts += 1
        for _ in range(args.crops):
            out = flip(crop(resize(_pascal_results(scene))))
            parts = out['gt_human_parts']
            labelled = int((parts != 255).sum())
            trained_pixels['full_image'] += labelled
            after = reference(dict(out))['gt_human_parts']
            trained_pixels['after_crop'] += int((after != 255).sum())
            crops += 1
            changed += not _has_parts(parts)
    print(
        '| scenes with parts | crops | crops without a part pixel (ignored by the reference) '
        '| parts-labelled pixels, reference / ours |'
    )
    print('|---|---|---|---|')
    print(
        f'| {images_with_parts} of {args.scenes} | {crops} '
        f'| {changed} ({100 * changed / max(crops, 1):.1f}%) '
        f'| {trained_pixels["after_crop"] / max(trained_pixels["full_image"], 1):.3f} |'
    )


# ------------------------------------------------------------------- 15, 16
def _angle(a, b):
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.degrees(
        2
        * np.arctan2(
            np.linalg.norm(a - b, axis=-1), np.linalg.norm(a + b, axis=-1)
        )
    )


def measure_normals(args):
    lengths, l1_floor, cos_floor = [], [], []
    near_vs_bilinear, validity, moved = [], [], []
    rng = np.random.default_rng(0)
    for index in range(args.scenes):
        scene = render_scene(1, index, *PASCAL_SIZE)
        # PASCAL_MT keeps the normals on some classes only: here on the even ones
        keep = (scene['semseg'] % 2 == 0) & (scene['semseg'] != 255)
        unit = np.where(keep[..., None], scene['normals'], 0.0)
        valid = np.abs(unit).sum(-1) > 0
        # 15: the PASCAL_MT encoding, an 8-bit RGB PNG, decoded 2 v / 255 - 1
        png = np.clip(np.rint((unit + 1.0) * 127.5), 0, 255).astype(np.uint8)
        stored = np.where(
            valid[..., None], 2.0 * png / 255.0 - 1.0, 0.0
        ).astype(np.float32)
        renorm = stored / np.maximum(
            np.linalg.norm(stored, axis=-1, keepdims=True), 1e-12
        )
        lengths.append(np.linalg.norm(stored[valid], axis=-1))
        # a perfect prediction (the unit direction): the loss left by the gt's length alone
        l1_floor.append(np.abs(renorm[valid] - stored[valid]).sum(-1).mean())
        cos_floor.append(1 - (renorm[valid] * stored[valid]).sum(-1).mean())
        # 16: one random scale of the PASCAL pipeline, nearest vs bilinear + renormalise
        ratio = rng.uniform(0.5, 2.0)
        results = dict(
            img=np.zeros((*PASCAL_SIZE, 3), np.uint8),
            task_kinds=dict(normals='normals'),
            gt_normals=stored,
        )
        near = MultiTaskResize(
            scale_factor=ratio, normals_interpolation='nearest'
        )(dict(results))['gt_normals']
        blend = MultiTaskResize(scale_factor=ratio)(dict(results))[
            'gt_normals'
        ]
        v_near = np.abs(near).sum(-1) > 0
        v_blend = np.abs(blend).sum(-1) > 0
        both = v_near & v_blend
        ang = _angle(near[both], blend[both])
        near_vs_bilinear.append(ang)
        validity.append((v_near != v_blend).mean())
        moved.append((ang > 1.0).mean())
    lengths = np.concatenate(lengths)
    ang = np.concatenate(near_vs_bilinear)
    print(
        '| 15: stored length, mean abs(1 - len) / max | L1 loss floor (sum over channels) '
        '| cosine loss floor | angle stored vs renormalised |'
    )
    print('|---|---|---|---|')
    print(
        f'| {np.abs(1 - lengths).mean():.4f} / {np.abs(1 - lengths).max():.4f} '
        f'| {np.mean(l1_floor):.4f} | {np.mean(cos_floor):.2e} | 0 (same direction) |'
    )
    print()
    print(
        '| 16: nearest vs bilinear, mean angle over pixels valid in both | pixels > 1 deg apart '
        '| pixels whose validity differs |'
    )
    print('|---|---|---|')
    print(
        f'| {ang.mean():.2f} deg (median {np.median(ang):.2f}, '
        f'99th pct {np.percentile(ang, 99):.1f}) '
        f'| {100 * np.mean(moved):.1f}% | {100 * np.mean(validity):.2f}% |'
    )
    print(
        f'({args.scenes} synthetic scenes at {PASCAL_SIZE[0]} x '
        f'{PASCAL_SIZE[1]}, scale ratios U(0.5, 2))'
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='what', required=True)
    p = sub.add_parser('init', help='12: layer_init reference vs kaiming')
    p.add_argument('--seeds', type=int, default=3)
    p = sub.add_parser('parts', help='14: the parts decision after the crop')
    p.add_argument('--scenes', type=int, default=100)
    p.add_argument('--crops', type=int, default=5)
    p = sub.add_parser(
        'normals', help='15 and 16: normals as stored, nearest resizing'
    )
    p.add_argument('--scenes', type=int, default=40)
    args = parser.parse_args()
    register_all_modules()
    dict(init=measure_init, parts=measure_parts, normals=measure_normals)[
        args.what
    ](args)


if __name__ == '__main__':
    main()
