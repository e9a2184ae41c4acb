"""Checkpoints carry a content hash: a damaged or truncated one is refused by resume,
tools/test.py, init_model and the converters, naming the file; a checkpoint without
one (written by other code) still loads; tools/misc/publish_model.py names its output
by its sha256, which every load checks."""

import hashlib
import io
import os
import os.path as osp
import subprocess
import sys
from zipfile import ZipFile

import pytest
import torch
from mmengine.runner import Runner
from reliability_helpers import REPO, env, run_test, write_config

from ctal_mm.apis import init_model
from ctal_mm.engine.checkpoint_files import (
    find_resumable_checkpoint,
    write_checkpoint,
)
from ctal_mm.engine.config_loading import load_config
from ctal_mm.utils import register_all_modules, safe_torch_load
from ctal_mm.utils.checkpoint_integrity import (
    CorruptCheckpointError,
    _data_offset,
    verify_checkpoint,
)

PUBLISH = osp.join(REPO, 'tools', 'misc', 'publish_model.py')


def _cfg(folder, **extra):
    register_all_modules(init_default_scope=False)
    cfg = load_config(write_config(folder / 'tiny.py', max_epochs=1))
    cfg.custom_hooks = []
    cfg.work_dir = str(folder / 'work')
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    cfg.merge_from_dict(extra)
    return cfg


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A one-epoch run of the tiny config: its folder and ``epoch_1.pth``."""
    folder = tmp_path_factory.mktemp('trained')
    Runner.from_cfg(_cfg(folder)).train()
    return folder, folder / 'work' / 'epoch_1.pth'


def _flip(path, out, record_tail='data/0', where=0.5):
    """Copy ``path`` to ``out`` with one byte of a record changed."""
    data = bytearray(open(path, 'rb').read())
    with ZipFile(path) as archive:
        info = next(
            i for i in archive.infolist() if i.filename.endswith(record_tail)
        )
    at = _data_offset(data, info) + int(info.compress_size * where)
    data[at] ^= 0x01
    with open(out, 'wb') as f:
        f.write(data)
    return str(out)


def _truncate(path, out):
    data = open(path, 'rb').read()
    with open(out, 'wb') as f:
        f.write(data[: len(data) * 2 // 3])
    return str(out)


def _largest_record(path):
    with ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    return info.filename.split('/', 1)[1]


def test_a_flipped_bit_in_a_tensor_or_the_meta_is_named(tmp_path):
    checkpoint = dict(
        state_dict=dict(w=torch.arange(4096, dtype=torch.float32)),
        meta=dict(epoch=3, note='x' * 100),
    )
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    path = str(tmp_path / 'a.pth')
    write_checkpoint(buffer.getvalue(), path)
    digest = verify_checkpoint(path)
    assert len(digest) == 64
    assert torch.equal(
        safe_torch_load(path)['state_dict']['w'], checkpoint['state_dict']['w']
    )
    # plain torch.load reads the damaged copy without a word; ctal_mm does not
    bad = _flip(path, tmp_path / 'b.pth')
    assert not torch.equal(
        torch.load(bad, weights_only=True)['state_dict']['w'],
        checkpoint['state_dict']['w'],
    )
    with pytest.raises(CorruptCheckpointError) as info:
        safe_torch_load(bad)
    message = str(info.value)
    assert 'b.pth' in message and digest in message
    assert 'data/0 (the bytes of a tensor)' in message
    meta = _flip(path, tmp_path / 'c.pth', record_tail='data.pkl', where=0.9)
    with pytest.raises(CorruptCheckpointError, match=r'data\.pkl'):
        verify_checkpoint(meta)
    with pytest.raises(CorruptCheckpointError, match='truncated'):
        verify_checkpoint(_truncate(path, tmp_path / 'd.pth'))


def test_resume_refuses_a_damaged_checkpoint_and_skips_it_without_a_path(
    trained, tmp_path
):
    folder, good = trained
    record = _largest_record(good)
    bad = _flip(good, tmp_path / 'epoch_1.pth', record_tail=record)
    cfg = _cfg(tmp_path, load_from=bad, resume=True)
    cfg.train_cfg.max_epochs = 2
    with pytest.raises(CorruptCheckpointError) as info:
        Runner.from_cfg(cfg).train()
    assert bad in str(info.value) and 'saved with content hash' in str(
        info.value
    )
    # --resume without a path passes over it (nothing older here: starts anew)
    path, notes = find_resumable_checkpoint(str(tmp_path))
    assert path is None
    assert any('epoch_1.pth skipped' in n for n in notes)
    truncated = _truncate(good, tmp_path / 'cut.pth')
    cfg = _cfg(tmp_path, load_from=truncated, resume=True)
    with pytest.raises((CorruptCheckpointError, ValueError), match='cut.pth'):
        Runner.from_cfg(cfg).train()


def test_tools_test_refuses_a_damaged_checkpoint(trained, tmp_path):
    folder, good = trained
    bad = _flip(good, tmp_path / 'bad.pth', record_tail=_largest_record(good))
    proc = run_test(folder / 'tiny.py', bad, tmp_path / 'test')
    assert proc.returncode != 0
    assert 'CorruptCheckpointError: ' in proc.stdout
    assert 'bad.pth' in proc.stdout and 'Traceback' not in proc.stdout
    proc = run_test(
        folder / 'tiny.py',
        _truncate(good, tmp_path / 'cut.pth'),
        tmp_path / 'test',
    )
    assert proc.returncode != 0 and 'cut.pth' in proc.stdout
    assert 'truncated' in proc.stdout


def test_init_model_refuses_damaged_and_loads_foreign(trained, tmp_path):
    folder, good = trained
    config = str(folder / 'tiny.py')
    bad = _flip(good, tmp_path / 'bad.pth', record_tail=_largest_record(good))
    with pytest.raises(CorruptCheckpointError, match='bad.pth'):
        init_model(config, bad)
    with pytest.raises(CorruptCheckpointError, match='cut.pth'):
        init_model(config, _truncate(good, tmp_path / 'cut.pth'))
    # written by plain torch.save (another tool): no hash, loads as before
    foreign = tmp_path / 'foreign.pth'
    torch.save(
        dict(state_dict=torch.load(good, weights_only=False)['state_dict']),
        foreign,
    )
    assert verify_checkpoint(str(foreign)) is None
    model = init_model(config, str(foreign))
    key = 'backbone.conv1.weight'
    assert torch.equal(
        model.state_dict()[key],
        safe_torch_load(str(good))['state_dict'][key],
    )


def test_publish_model_names_the_file_by_its_sha256(trained, tmp_path):
    folder, good = trained
    proc = subprocess.run(
        [sys.executable, PUBLISH, str(good), str(tmp_path / 'ctal_tiny.pth')],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout
    path = proc.stdout.strip().splitlines()[-1]
    digest = hashlib.sha256(open(path, 'rb').read()).hexdigest()
    assert path == str(tmp_path / f'ctal_tiny-{digest[:8]}.pth')
    published = safe_torch_load(path)
    assert set(published) == {'state_dict', 'meta'}
    meta = published['meta']
    assert {'cfg', 'dataset_meta', 'ctal_mm_version', 'torch_version'} <= set(
        meta
    )
    assert os.path.getsize(path) < os.path.getsize(good)  # no optimizer
    init_model(str(folder / 'tiny.py'), path)
    # a damaged copy under the same name fails the name check first
    bad = _flip(path, tmp_path / osp.basename(path).replace('ctal', 'bad'))
    with pytest.raises(CorruptCheckpointError, match='its name says'):
        init_model(str(folder / 'tiny.py'), bad)
