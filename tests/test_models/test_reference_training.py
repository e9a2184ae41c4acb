"""Every shipped NYUv2, Cityscapes and PASCAL-Context config trains as the
CTAL reference trains.

1. The total training loss of one batch: each shipped config's model (inputs
   shrunk, CTAL's feature size with them), loaded with weights converted
   from a reference-layout state dict, gives on a batch with invalid depth,
   zero normals and ignored labels the same total as the reference's loss
   formulas, written out below on the reference's ground-truth format
   (CNN tree: semseg ignore -1, log-softmax + NLL, depth and normals masked
   where the gt channels sum to 0; transformer tree: ignore 255, ATRC-style
   sums divided by valid pixels), with the reference's loss schemes (initial
   + final; HPS counting its one output twice; STL unweighted; MTI-Net and
   M-CTAL averaging their four scales).
2. Optimiser, schedule (lr at chosen epochs), clipping, batch size, drop_last
   and the backbone's BN momentum against the reference's yml files.
"""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from reference_checkpoints import read_listing

from ctal_mm.engine.config_loading import load_config
from ctal_mm.model_converters.reference_keys import (
    SWIN_RECOMPUTED_BUFFERS,
    convert_reference_state_dict,
    map_reference_key,
    reference_key_rules,
)
from ctal_mm.registry import MODELS
from ctal_mm.structures import MultiTaskDataSample
from ctal_mm.utils import register_all_modules

register_all_modules()
CONFIGS = Path(__file__).parents[2] / 'configs'
CONFIG_NAMES = {
    'ctal': 'ctal',
    'hps': 'hps',
    'stl': 'stl',
    'padnet': 'padnet',
    'papnet': 'papnet',
    'mti_net': 'mtinet',
    'm_ctal': 'mctal',
}
SUFFIX = {
    'nyu': ('hrnet18s', '1xb8-200e_nyuv2-288x384'),
    'cityscapes': ('hrnet18s', '1xb8-75e_cityscapes-128x256'),
    'pascal': ('swinv2s', '1xb8-70e_pascal-context-512x512'),
}
CASES = [
    (model, dataset)
    for dataset in ('nyu', 'cityscapes', 'pascal')
    for model in CONFIG_NAMES
    if not (dataset == 'pascal' and model in ('mti_net', 'm_ctal'))
]
# shrunk inputs (HRNet and Swin need multiples of 32)
INPUT = {'nyu': (32, 64), 'cityscapes': (32, 64), 'pascal': (64, 64)}

# ----------------------------------------------------- the reference's values
# configs/{nyu,cityscapes}/hrnet18s/*.yml, configs/pascal/swinv2/*.yml
REFERENCE_WEIGHTS = {
    'nyu': dict(semseg=1.0, depth=1.0, normals=1.0),
    'cityscapes': dict(semseg=1.0, depth=10.0),
    'pascal': dict(
        semseg=1.0, human_parts=2.0, sal=5.0, edge=50.0, normals=10.0
    ),
    'pascal_ctal': dict(
        semseg=2.0, human_parts=2.0, sal=5.0, edge=50.0, normals=10.0
    ),
}
# (lr, weight decay, epochs, scheduler, train batch); no clipping anywhere
# (grad_clip_param is never read); Adam everywhere
REFERENCE_OPTIM = {
    'nyu': (1e-4, 1e-4, 200, 'cosine', 8),
    'cityscapes': (5e-4, 1e-4, 75, 'cosine', 8),
    'pascal': (2e-5, 1e-5, 70, 'cosine', 8),
}
REFERENCE_COSINE_WR = {('mti_net', 'cityscapes'), ('m_ctal', 'cityscapes')}
REFERENCE_BATCH = {('stl', 'pascal'): 2}
HRNET_BN_MOMENTUM = 0.01  # models/hrnet.py BN_MOMENTUM


def config_path(model, dataset):
    backbone, suffix = SUFFIX[dataset]
    if model == 'stl' and dataset == 'pascal':
        suffix = suffix.replace('1xb8', '1xb2')
    folder = 'ctal' if model == 'ctal' else 'baselines'
    return CONFIGS / folder / f'{CONFIG_NAMES[model]}_{backbone}_{suffix}.py'


# ------------------------------------------------------------ the batch
def make_batch(dataset, g):
    """``(inputs, our data samples, the reference's gt dict)``."""
    B, (H, W) = 2, INPUT[dataset]
    inputs = torch.rand(B, 3, H, W, generator=g)
    ours = [MultiTaskDataSample() for _ in range(B)]
    ref = {}

    def labels(classes, ignore_frac=0.2):
        y = torch.randint(0, classes, (B, 1, H, W), generator=g)
        y[torch.rand(B, 1, H, W, generator=g) < ignore_frac] = 255
        return y

    def normals():
        n = F.normalize(torch.randn(B, 3, H, W, generator=g), dim=1)
        n[:, :, : H // 4] = 0  # invalid rows
        return n

    if dataset in ('nyu', 'cityscapes'):
        semseg = labels(13 if dataset == 'nyu' else 19)
        depth = torch.rand(B, 1, H, W, generator=g) * 5 + 0.5
        depth[torch.rand(B, 1, H, W, generator=g) < 0.3] = 0  # invalid
        gts = dict(semseg=semseg, depth=depth)
        ref = dict(
            semseg=torch.where(semseg == 255, -1, semseg)[:, 0].float(),
            depth=depth,
        )
        if dataset == 'nyu':
            gts['normals'] = ref['normals'] = normals()
    else:
        semseg, parts = labels(21), labels(7)
        parts[1] = 255  # an image without people: no part labels at all
        sal = labels(2, 0.1)
        edge = (torch.rand(B, 1, H, W, generator=g) < 0.1).long()
        edge[:, :, -4:] = 255  # padding
        n = normals()
        gts = dict(
            semseg=semseg,
            human_parts=parts,
            saliency=sal,
            edge=edge,
            normals=n,
        )
        ref = dict(
            semseg=semseg.float(),
            human_parts=parts.float(),
            sal=sal.float(),
            edge=edge.float(),
            # AddIgnoreRegions: zero normals become 255
            normals=torch.where((n == 0).all(1, keepdim=True), 255.0, n),
        )
    for i, sample in enumerate(ours):
        for task, gt in gts.items():
            sample.set_gt(task, gt[i])
    return inputs, ours, ref


# ----------------------------------------------- the reference's formulas
def cnn_fit(pred, gt, task):
    """code_cnn/losses/loss_schemes.py: finalize, then model_fit."""
    if task == 'semseg':
        return F.nll_loss(F.log_softmax(pred, 1), gt.long(), ignore_index=-1)
    mask = (gt.sum(1) != 0).float().unsqueeze(1)
    count = mask.sum()
    if task == 'depth':
        return (torch.abs(pred - gt) * mask).sum() / count
    pred = pred / torch.norm(pred, p=2, dim=1, keepdim=True)
    return 1 - (pred * gt * mask).sum() / count


def transformer_fit(pred, gt, task):
    """code_transformer/losses/loss_functions.py (ATRC / ASTMT)."""
    if task in ('semseg', 'human_parts'):
        label = gt[:, 0].long()
        loss = F.cross_entropy(pred, label, ignore_index=255, reduction='none')
        return loss.sum() / max((label != 255).sum(), 1)
    if task == 'sal':
        label = gt[:, 0].long()
        valid = label != 255
        w_pos = (1.0 - label[valid].float()).sum() / valid.sum()
        weight = torch.stack((1.0 - w_pos, w_pos))
        loss = F.cross_entropy(
            pred, label, weight=weight, ignore_index=255, reduction='none'
        )
        return loss.sum() / max(valid.sum(), 1)
    if task == 'edge':
        mask = gt != 255
        w, factor = 0.95, 1 / (1 - 0.95)
        loss = F.binary_cross_entropy_with_logits(
            pred[mask], gt[mask], pos_weight=torch.tensor(w * factor)
        )
        return loss / factor
    # normals: L1 of the normalised prediction over valid pixels
    out = F.normalize(pred, p=2, dim=1)
    mask = (gt != 255).all(dim=1, keepdim=True)
    n_valid = mask.sum()
    diff = torch.masked_select(out, mask) - torch.masked_select(gt, mask)
    return diff.abs().sum() / max(n_valid, 1)


def reference_total(model, dataset, outputs, gt):
    """The reference's losses['total'] of one batch."""
    fit = transformer_fit if dataset == 'pascal' else cnn_fit
    weights = REFERENCE_WEIGHTS[
        'pascal_ctal' if (dataset, model) == ('pascal', 'ctal') else dataset
    ]

    def loss(stage, task):
        ours = 'saliency' if task == 'sal' else task
        return fit(outputs[stage][ours], gt[task], task)

    total = 0.0
    for task, w in weights.items():
        if model == 'stl':  # each network's own unweighted final loss
            total = total + loss('final', task)
        elif model == 'hps':  # initial and final are the same tensor
            total = total + 2 * w * loss('final', task)
        elif model in ('mti_net', 'm_ctal'):
            initial = sum(loss(f'scale_{s}', task) for s in range(4)) / 4
            total = total + w * (initial + loss('final', task))
        else:
            total = total + w * (loss('initial', task) + loss('final', task))
    return total


# ------------------------------------------------------------ the model
def shrunk_model(model, dataset):
    cfg = load_config(config_path(model, dataset))
    cfg.model.backbone.init_cfg = None
    H, W = INPUT[dataset]
    if (
        dataset == 'pascal'
    ):  # 64x64 inputs: Swin's last maps are under a window
        cfg.model.backbone.pad_small_map = True
    if model in ('ctal', 'm_ctal'):
        cfg.model.decoder.affinity.feature_size = (
            (H // 4, W // 4) if dataset != 'pascal' else (H // 32, W // 32)
        )
    return MODELS.build(cfg.model)


def reference_layout_state_dict(model, dataset, target, g):
    """Random tensors under every key of the reference's listing; where the
    shrunk input changes a size (CTAL's fusion conv is sized by the number
    of positions), the size our shrunk model needs."""
    tree = 'transformer' if dataset == 'pascal' else 'cnn'
    shapes, _ = read_listing(dataset, model)
    rules = reference_key_rules(model, tree)
    state, shared = {}, {}
    for key, shape in shapes.items():
        ours = map_reference_key(key, rules)
        if ours in target and math.prod(shape) != target[ours].numel():
            shape = tuple(target[ours].shape)
        # STL: the task networks' backbones share values (a fifth of the
        # random numbers for PASCAL's five Swin-V2-S)
        rest = key.split('.', 2)[2] if key.startswith('backbones.') else None
        if rest in shared:
            state[key] = shared[rest].clone()
        elif 'num_batches_tracked' in key:
            state[key] = torch.tensor(1)
        elif 'running_var' in key:
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.1
        if rest is not None:
            shared.setdefault(rest, state[key])
    return state


@pytest.mark.parametrize('model,dataset', CASES)
def test_one_batch_loss_equals_the_reference_formulas(model, dataset):
    g = torch.Generator().manual_seed(0)
    ours = shrunk_model(model, dataset)
    tree = 'transformer' if dataset == 'pascal' else 'cnn'
    target = ours.state_dict()
    converted, unmapped = convert_reference_state_dict(
        reference_layout_state_dict(model, dataset, target, g),
        model,
        tree,
        target=target,
    )
    assert unmapped == []
    missing, unexpected = ours.load_state_dict(converted, strict=False)
    assert unexpected == []
    assert all(SWIN_RECOMPUTED_BUFFERS.search(k) for k in missing)
    ours.train()

    inputs, samples, gt = make_batch(dataset, g)
    torch.manual_seed(1)  # the same dropout / drop-path masks in both runs
    losses = ours.loss(inputs, samples)
    total = sum(losses.values())
    torch.manual_seed(1)
    with torch.no_grad():
        outputs = ours.decode(inputs)
    expected = reference_total(model, dataset, outputs, gt)
    assert torch.isfinite(total)
    torch.testing.assert_close(total.detach(), expected, rtol=2e-6, atol=1e-6)


# --------------------------------------------------- optimisation recipe
def _lr_by_epoch(cfg, epochs):
    from mmengine.optim.scheduler import _ParamScheduler  # noqa: F401

    from ctal_mm.registry import PARAM_SCHEDULERS

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=opt))
        for s in cfg.param_scheduler
    ]
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]['lr'])
        for s in schedulers:
            s.step()
    return lrs


def _reference_lr_by_epoch(model, dataset):
    lr, _, epochs, _, _ = REFERENCE_OPTIM[dataset]
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=lr)
    lrs = []
    if (model, dataset) in REFERENCE_COSINE_WR:
        sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=epochs // 3, T_mult=2
        )
        for epoch in range(epochs):
            lrs.append(opt.param_groups[0]['lr'])
            sched.step(epoch + 1)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        for _ in range(epochs):
            lrs.append(opt.param_groups[0]['lr'])
            sched.step()
    return lrs


@pytest.mark.parametrize('model,dataset', CASES)
def test_recipe_equals_the_reference(model, dataset):
    cfg = load_config(config_path(model, dataset))
    lr, wd, epochs, _, batch = REFERENCE_OPTIM[dataset]
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'Adam'
    assert optimizer.lr == lr and optimizer.weight_decay == wd
    assert cfg.optim_wrapper.get('clip_grad') is None
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.train_dataloader.batch_size == REFERENCE_BATCH.get(
        (model, dataset), batch
    )
    assert cfg.train_dataloader.drop_last is True
    assert cfg.get('randomness', {}).get('seed', 0) == 0
    ours = _lr_by_epoch(cfg, epochs)
    reference = _reference_lr_by_epoch(model, dataset)
    for epoch in (0, 1, 10, 24, 25, 26, epochs // 2, epochs - 1):
        assert ours[epoch] == pytest.approx(
            reference[epoch], rel=1e-6, abs=1e-12
        ), epoch
    if dataset != 'pascal':
        assert cfg.model.backbone.norm_cfg.momentum == HRNET_BN_MOMENTUM
        built = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
        bns = [
            m for m in built.modules() if isinstance(m, torch.nn.BatchNorm2d)
        ]
        assert bns and all(m.momentum == HRNET_BN_MOMENTUM for m in bns)


# --------------------------------------------------- init outside the backbone
def _outside_backbone(model):
    skip = {id(m) for s in model.pretrained_modules() for m in s.modules()}
    return [(n, m) for n, m in model.named_modules() if id(m) not in skip]


def _pytorch_bound(weight):
    # kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain sqrt(3 / fan_in)
    return 1 / math.sqrt(weight[0].numel())


WEIGHTED = (torch.nn.modules.conv._ConvNd, torch.nn.Linear)
NORMS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm)


@pytest.mark.parametrize('model,dataset', CASES)
def test_layers_outside_the_backbone_start_as_pytorch_builds_them(
    model, dataset
):
    """The reference builds its neck, heads and decoder and leaves PyTorch's
    init; layer_init='reference' gives the same distributions, and leaves the
    backbone as its own init (or file) made it."""
    assert load_config(config_path(model, dataset)).model.layer_init == (
        'reference'
    )
    built = {}
    for layer_init in ('reference', 'kaiming'):
        torch.manual_seed(0)
        m = shrunk_model(model, dataset)
        m.layer_init = layer_init
        m.init_weights()
        built[layer_init] = m
    ours, kaiming = built['reference'], built['kaiming']
    for a, b in zip(ours.pretrained_modules(), kaiming.pretrained_modules()):
        for (key, x), y in zip(
            a.state_dict().items(), b.state_dict().values()
        ):
            torch.testing.assert_close(x, y, rtol=0, atol=0, msg=key)
    convs = norms = 0
    for name, m in _outside_backbone(ours):
        if isinstance(m, WEIGHTED):
            bound = _pytorch_bound(m.weight)
            assert m.weight.abs().max() <= bound, name
            if m.weight.numel() >= 2000:  # U(-b, b) has std b / sqrt(3)
                assert m.weight.std().item() == pytest.approx(
                    bound / math.sqrt(3), rel=0.1
                ), name
            if m.bias is not None:
                assert m.bias.abs().max() <= bound, name
            convs += 1
        elif isinstance(m, NORMS) and m.weight is not None:
            assert (m.weight == 1).all() and (m.bias == 0).all(), name
            norms += 1
    assert convs and norms
    # mmcv's Kaiming-normal init exceeds PyTorch's bound somewhere
    assert any(
        m.weight.abs().max() > _pytorch_bound(m.weight)
        for _, m in _outside_backbone(kaiming)
        if isinstance(m, WEIGHTED)
    )


def test_reference_layer_init_equals_a_freshly_built_layer():
    from mmcv.cnn import ConvModule

    from ctal_mm.models.layer_init import reset_to_pytorch_defaults

    block = ConvModule(6, 5, 3, padding=1, norm_cfg=dict(type='BN'))
    block.init_weights()  # Kaiming-normal
    with torch.no_grad():
        block.bn.weight.fill_(2.0)
    torch.manual_seed(3)
    assert reset_to_pytorch_defaults(block) == 2  # the conv and the BN
    torch.manual_seed(3)
    fresh = torch.nn.Conv2d(6, 5, 3, padding=1, bias=False)
    torch.testing.assert_close(block.conv.weight, fresh.weight, rtol=0, atol=0)
    assert (block.bn.weight == 1).all() and (block.bn.bias == 0).all()
    with pytest.raises(ValueError, match='layer_init'):
        MODELS.build(
            dict(
                type='MultiTaskEncoderDecoder',
                backbone=dict(
                    type='PerTaskEncoders', tasks=['x'], backbone={}
                ),
                decoder={},
                tasks=dict(depth=dict(kind='depth', channels=1)),
                layer_init='xavier',
            )
        )
