"""demo/image_demo.py and demo/video_demo.py on a tiny CTAL checkpoint."""

import cv2
import numpy as np
import pytest
import torch
from repo_scripts import load_script
from tiny_models import TASKS, tiny_config

from ctal_mm.apis import init_model


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    cfg = tiny_config('ctal')
    config = str(root / 'tiny_ctal.py')
    cfg.dump(config)
    model = init_model(cfg)
    path = str(root / 'tiny_ctal.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return config, path


def test_image_demo_writes_every_tasks_files(checkpoint, tmp_path):
    config, path = checkpoint
    images = tmp_path / 'images'
    images.mkdir()
    for i, shape in enumerate([(40, 60), (70, 50)]):
        cv2.imwrite(
            str(images / f'{i}.jpg'), np.full(shape + (3,), 60 * i, np.uint8)
        )
    (images / 'readme.md').write_text('# not an image')
    out = tmp_path / 'out'
    demo = load_script('demo/image_demo.py')
    result = demo.main(
        [str(images), config, path, '--out-dir', str(out), '--tta']
    )
    assert len(result['predictions']) == 2 and len(result['skipped']) == 1
    for task in TASKS:
        assert (out / task / '1.png').is_file() or (
            out / task / '1.npy'
        ).is_file()
    assert cv2.imread(
        str(out / 'semseg' / '1.png'), cv2.IMREAD_UNCHANGED
    ).shape == (70, 50)
    assert (out / 'panel' / '0.png').is_file()


def test_video_demo_writes_side_by_side_task_maps(checkpoint, tmp_path):
    config, path = checkpoint
    video = str(tmp_path / 'in.mp4')
    writer = cv2.VideoWriter(
        video, cv2.VideoWriter_fourcc(*'mp4v'), 5, (40, 24)
    )
    assert writer.isOpened()
    for i in range(5):
        writer.write(np.full((24, 40, 3), 40 * i, np.uint8))
    writer.release()
    out = str(tmp_path / 'out.mp4')
    demo = load_script('demo/video_demo.py')
    assert (
        demo.main([video, config, path, '--out', out, '--batch-size', '2'])
        == 5
    )
    capture = cv2.VideoCapture(out)
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames += 1
        # the frame and one picture per task, side by side
        assert frame.shape[:2] == (24, 40 * (1 + len(TASKS)))
    assert frames == 5


def test_benchmark_times_the_inferencer_beside_the_forward(checkpoint, capsys):
    config, path = checkpoint
    tool = load_script('tools/analysis_tools/benchmark.py')
    times = tool.main(
        [config, path, '--inferencer', '--num-iters', '2', '--warmup', '1']
    )
    assert 0 < times['forward'] < times['inferencer']
    out = capsys.readouterr().out
    assert '| model forward alone |' in out and 'inferencer overhead' in out


def test_test_py_tta_and_out_dir(checkpoint, tmp_path):
    import subprocess
    import sys

    from repo_scripts import REPO

    config, path = checkpoint
    out = tmp_path / 'files'
    run = subprocess.run(
        [
            sys.executable,
            f'{REPO}/tools/test.py',
            config,
            path,
            '--work-dir',
            str(tmp_path / 'work'),
            '--tta',
            '--out',
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert 'MultiTaskTTAModel' in log and 'semseg/mIoU' in log
    # 4 test scenes (the tiny config), no image files: named by dataset index
    assert sorted(p.name for p in (out / 'semseg').glob('*_color.png')) == [
        f'{i:06d}_color.png' for i in range(4)
    ]
    assert len(list((out / 'normals').glob('*.npy'))) == 4
