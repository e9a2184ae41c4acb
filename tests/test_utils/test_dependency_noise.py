"""Lines that say nothing about ctal_mm are not printed: mmseg's 'Could not import OneDL',
mmcv's MultiScaleDeformableAttention warning (either variant, on either stack), the neck's
conv-bias warning, mmengine's 'prefix is not set' warning for our metrics, and checkpoints
load 'by local backend'."""

import logging
import os
import os.path as osp
import subprocess
import sys
import warnings

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint
from repo_scripts import REPO

from ctal_mm.evaluation.metrics import (
    DepthMetric,
    MultiTaskMetric,
    SegmentationMetric,
)
from ctal_mm.models.necks.hrnet_fuse_neck import HRNetFuseNeck


def _python(code):
    """Run ``code`` in a fresh interpreter that shows every warning (``-W always``)."""
    out = subprocess.run(
        [sys.executable, '-W', 'always', '-c', code],
        cwd=REPO,
        env=dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                [REPO, os.environ.get('PYTHONPATH', '')]
            ),
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout + out.stderr


def test_importing_ctal_mm_prints_no_dependency_noise():
    # this stack as installed: its mmcv has compiled ops (STACK=openmmlab) or not (default)
    printed = _python(
        'import ctal_mm.apis, ctal_mm.models, ctal_mm.datasets\n'
        'from ctal_mm.utils import register_all_modules\n'
        'register_all_modules()\n'
        'print("done")\n'
    )
    assert 'done' in printed
    assert 'OneDL' not in printed
    assert 'MultiScaleDeformableAttention' not in printed


# mmcv's transformer module warns one way when mmcv.ops.multi_scale_deform_attn imports (mmcv
# with compiled ops) and another when it does not (pure-Python mmcv). Each stack has one of
# the two builds; entering the module into sys.modules (a stand-in, or None: "not importable")
# before mmcv's transformer module is imported makes the same mmcv take the other branch.
_OPS = {
    'ops_present': (
        'import types\n'
        'op = types.ModuleType("mmcv.ops.multi_scale_deform_attn")\n'
        'op.MultiScaleDeformableAttention = object\n'
        'sys.modules[op.__name__] = op\n',
        'ImportWarning',
    ),
    'ops_missing': (
        # mmcv.ops itself stays real where it imports (mmseg imports it on the original
        # stack); only the transformer module's later import of the op fails
        'try:\n'
        '    import mmcv.ops\n'
        'except ImportError:\n'
        '    pass\n'
        'sys.modules["mmcv.ops.multi_scale_deform_attn"] = None\n',
        'UserWarning',
    ),
}
_RECORD_WARNINGS = (
    'import sys, warnings\n'
    'def show(message, category, filename, lineno, file=None, line=None):\n'
    '    print("WARNING", category.__name__, filename, message)\n'
    'warnings.showwarning = show\n'
)


@pytest.mark.parametrize('ops', sorted(_OPS))
def test_both_deformable_attention_warnings_are_filtered(ops):
    setup, category = _OPS[ops]
    transformer = osp.join('mmcv', 'cnn', 'bricks', 'transformer.py')
    # without ctal_mm the installed mmcv warns (so the filter below has work to do)
    unfiltered = _python(
        _RECORD_WARNINGS + setup + 'import mmcv.cnn.bricks.transformer\n'
    )
    shown = [
        line
        for line in unfiltered.splitlines()
        if line.startswith('WARNING') and transformer in line
    ]
    assert len(shown) == 1 and shown[0].split()[1] == category, unfiltered
    assert 'MultiScaleDeformableAttention' in shown[0]
    # importing ctal_mm imports that module with its warning filtered
    printed = _python(
        _RECORD_WARNINGS
        + setup
        + 'import ctal_mm\n'
        + 'assert "mmcv.cnn.bricks.transformer" in sys.modules\n'
        # the filter lasted the import only: the module's later warnings are shown
        + 'warnings.warn_explicit("later", UserWarning, "transformer.py", 1,'
        + ' module="mmcv.cnn.bricks.transformer")\n'
    )
    assert 'MultiScaleDeformableAttention' not in printed, printed
    assert 'WARNING UserWarning transformer.py later' in printed, printed


def test_neck_keeps_its_bias_without_the_conv_bias_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        neck = HRNetFuseNeck(in_channels=(2, 3))
    assert not [w for w in caught if 'conv bias' in str(w.message)]
    # the reference's checkpoints hold this bias
    assert neck.fuse.conv.bias is not None
    assert tuple(neck.fuse.conv.bias.shape) == (5,)


def test_metrics_have_an_empty_default_prefix_and_unprefixed_keys():
    metric = MultiTaskMetric(
        task_metrics=dict(
            semseg=dict(type='SegmentationMetric', num_classes=2),
            depth=dict(type='DepthMetric'),
        )
    )
    assert metric.prefix == ''
    for cls in (SegmentationMetric, DepthMetric):
        assert cls.default_prefix == ''
    logger = MMLogger.get_instance('test_dependency_noise_prefix')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        SegmentationMetric(task='semseg', num_classes=2)
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if 'prefix is not set' in r.getMessage()]


def test_checkpoint_loading_names_the_local_backend(tmp_path):
    model = torch.nn.Linear(2, 1)
    path = str(tmp_path / 'w.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    logger = MMLogger.get_instance('test_dependency_noise_ckpt')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        load_checkpoint(torch.nn.Linear(2, 1), path, logger=logger)
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records]
    assert any('Loads checkpoint by local backend' in m for m in messages), (
        messages
    )


class _OneBatch(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, i):
        return dict(inputs=torch.ones(2))


class _Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=self.linear(inputs).sum())


def test_training_logs_no_file_client_deprecation(tmp_path):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.toy = _Toy()

        def forward(self, inputs, data_samples=None, mode='loss'):
            return self.toy(inputs)

    runner = Runner(
        model=Toy(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=_OneBatch(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=1,
            collate_fn=dict(type='default_collate'),
        ),
        train_cfg=dict(by_epoch=False, max_iters=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        default_scope='ctal_mm',
    )
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)
    try:
        runner.train()
        runner.logger.warning('another warning')  # the filter is narrow
    finally:
        runner.logger.removeHandler(handler)
    messages = [r.getMessage() for r in records]
    assert not [m for m in messages if 'HardDiskBackend' in m], messages
    assert not [m for m in messages if '"FileClient" will be' in m], messages
    assert 'another warning' in messages
    assert osp.exists(
        tmp_path / 'epoch_1.pth'
    )  # saved through the filtered path
