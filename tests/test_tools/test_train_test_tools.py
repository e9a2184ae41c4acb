"""tools/train.py, tools/test.py and tools/dist_train.sh end to end on the synthetic scenes."""

import glob
import os
import os.path as osp
import pickle
import socket
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(
    REPO, 'configs', 'ctal', 'ctal_hrnet18s_1xb8-4e_synthetic-96x128.py'
)
# a few tiny scenes and one epoch: the whole run takes seconds
SHRINK = [
    'train_dataloader.dataset.num_samples=4',
    'train_dataloader.dataset.img_size=(32,32)',
    'val_dataloader.dataset.num_samples=2',
    'val_dataloader.dataset.img_size=(32,32)',
    'test_dataloader.dataset.num_samples=2',
    'test_dataloader.dataset.img_size=(32,32)',
    'train_dataloader.batch_size=2',
    'val_dataloader.batch_size=2',
    'test_dataloader.batch_size=2',
    'train_dataloader.num_workers=0',
    'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.persistent_workers=False',
    'model.decoder.affinity.feature_size=(8,8)',
    'train_cfg.max_epochs=1',
    'train_cfg.val_interval=1',
    'default_hooks.checkpoint.interval=1',
    'default_hooks.logger.interval=1',
]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    return env


def _run(cmd, cwd):
    proc = subprocess.run(
        cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, (
        f'{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    )
    return proc.stdout + proc.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_train_then_test_with_panels_and_predictions(tmp_path):
    work = tmp_path / 'work'
    log = _run(
        [
            sys.executable,
            osp.join(REPO, 'tools', 'train.py'),
            DEMO,
            '--work-dir',
            str(work),
            '--cfg-options',
            *SHRINK,
        ],
        cwd=tmp_path,
    )
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file(), log[-3000:]
    assert (
        'semseg/mIoU' in log
    )  # the validation at the end of the epoch ran and logged

    show_dir = tmp_path / 'panels'
    out = tmp_path / 'preds.pkl'
    files = tmp_path / 'files'
    log = _run(
        [
            sys.executable,
            osp.join(REPO, 'tools', 'test.py'),
            DEMO,
            str(ckpt),
            '--work-dir',
            str(tmp_path / 'test'),
            '--show-dir',
            str(show_dir),
            '--dump',
            str(out),
            '--out',
            str(files),
            '--cfg-options',
            *SHRINK,
        ],
        cwd=tmp_path,
    )
    assert 'depth/' in log
    assert len(glob.glob(str(show_dir / '*.png'))) == 2
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 2 and 'pred_semseg' in preds[0]
    # --out: MMSegmentation's meaning, the prediction files of every image
    assert len(glob.glob(str(files / 'semseg' / '*_color.png'))) == 2
    assert len(glob.glob(str(files / 'depth' / '*.npy'))) == 2
    assert len(glob.glob(str(files / 'normals' / '*_rgb.png'))) == 2


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    work = tmp_path / 'work'
    _run(
        [
            sys.executable,
            osp.join(REPO, 'tools', 'train.py'),
            DEMO,
            '--work-dir',
            str(work),
            '--cfg-options',
            *SHRINK,
        ],
        cwd=tmp_path,
    )
    log = _run(
        [
            sys.executable,
            osp.join(REPO, 'tools', 'train.py'),
            DEMO,
            '--work-dir',
            str(work),
            '--resume',
            '--cfg-options',
            *SHRINK,
            'train_cfg.max_epochs=2',
        ],
        cwd=tmp_path,
    )
    assert 'resumed epoch: 1' in log
    assert (work / 'epoch_2.pth').is_file()


def test_dist_train_with_two_cpu_processes(tmp_path):
    work = tmp_path / 'work'
    env_port = str(_free_port())
    cmd = [
        'bash',
        osp.join(REPO, 'tools', 'dist_train.sh'),
        DEMO,
        '2',
        '--work-dir',
        str(work),
        '--cfg-options',
        *SHRINK,
    ]
    proc = subprocess.run(
        cmd,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(_env(), PORT=env_port, PYTHON=sys.executable),
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert (work / 'epoch_1.pth').is_file()
    logs = glob.glob(str(work / '*' / '*.log'))
    log = open(logs[0]).read()
    # mmengine calls the world size 'GPU number' whatever the device
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert (
        "model_wrapper_cfg = dict(device_ids=None, type='MMDistributedDataParallel')"
        in log
    )


@pytest.mark.parametrize('script', ['train.py', 'test.py'])
def test_help_lists_mmseg_flags(script):
    out = _run(
        [sys.executable, osp.join(REPO, 'tools', script), '--help'], cwd=REPO
    )
    for flag in ('--work-dir', '--cfg-options', '--launcher'):
        assert flag in out


NOISE = (
    'Could not import OneDL',
    'MultiScaleDeformableAttention',
    'Unnecessary conv bias',
    'The prefix is not set',
    '"FileClient" will be deprecated',
    'HardDiskBackend',
    'should not accept any other arguments',  # a visualizer instance reused
    'l_checkpoint backend',
)


def test_demo_evaluates_trains_and_draws_without_noise(tmp_path):
    # the README's main job (make demo), shrunk to seconds
    work = tmp_path / 'demo'
    log = _run(
        [
            sys.executable,
            osp.join(REPO, 'tools', 'demo.py'),
            '--work-dir',
            str(work),
            '--cfg-options',
            *SHRINK,
        ],
        cwd=tmp_path,
    )
    table = log[log.index('[demo] held-out synthetic split') :]
    for metric in ('semseg/mIoU', 'depth/abs_err', 'normals/mean'):
        assert metric in table, table
    assert glob.glob(str(work / 'panels' / '**' / '*.png'), recursive=True)
    assert (work / 'final.pth').is_file()
    assert [n for n in NOISE if n in log] == [], log[-3000:]
    # each phase records its scalars in its own run directory: the training
    # scalars are the training run's, not the untrained evaluation's (which has none)
    untrained = glob.glob(
        str(work / 'untrained' / '**' / 'scalars.json'), recursive=True
    )
    own = glob.glob(str(work / '2*' / 'vis_data' / 'scalars.json'))
    assert untrained == [] and len(own) == 1, (untrained, own)
    with open(own[0]) as f:
        assert '"loss"' in f.read()
