"""ctal_mm.apis: predictions of the inferencer equal model.test_step on the same inputs
brought to the model's size and mapped back; files decode to the predictions; TTA; loading."""

import os.path as osp

import cv2
import mmcv
import numpy as np
import pytest
import torch
from tiny_models import SIZE, tiny_config

from ctal_mm.apis import (
    MultiTaskInferencer,
    UnreadableImageError,
    inference_model,
    init_model,
    read_prediction_file,
    task_palette,
)
from ctal_mm.models.test_time_aug import MultiTaskTTAModel
from ctal_mm.structures import MultiTaskDataSample, task_kind, unit_vectors
from ctal_mm.utils.model_weights import CheckpointMismatchError
from ctal_mm.visualization.task_drawers import DrawStyle, draw_depth


@pytest.fixture(scope='module', params=['ctal', 'hps'])
def model(request):
    torch.manual_seed(0)
    return init_model(tiny_config(request.param))


def _bgr(shape, seed):
    rng = np.random.default_rng(seed)
    # smooth content, so that resizing is not dominated by noise
    small = rng.integers(0, 256, (4, 5, 3)).astype(np.uint8)
    return cv2.resize(small, shape[::-1], interpolation=cv2.INTER_LINEAR)


def _reference(model, bgr, mode='resize'):
    """model.test_step on the image brought to the model's size by hand."""
    rgb = bgr[..., ::-1]
    h, w = SIZE
    meta = dict(ori_shape=rgb.shape[:2], img_shape=SIZE)
    if mode == 'resize':
        resized = mmcv.imresize(rgb, (w, h), interpolation='bilinear')
    else:
        factor = min(h / rgb.shape[0], w / rgb.shape[1])
        new_w = min(w, round(rgb.shape[1] * factor))
        new_h = min(h, round(rgb.shape[0] * factor))
        resized = np.zeros((h, w, 3), np.uint8)
        resized[:new_h, :new_w] = mmcv.imresize(
            rgb, (new_w, new_h), interpolation='bilinear'
        )
        meta.update(
            img_shape=(new_h, new_w), padding_size=(0, w - new_w, 0, h - new_h)
        )
    inputs = torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))
    sample = MultiTaskDataSample(metainfo=meta)
    with torch.no_grad():
        return model.test_step(dict(inputs=[inputs], data_samples=[sample]))[0]


def _assert_same(pred, ref, tasks):
    for task in tasks:
        a, b = pred.pred(task), ref.pred(task)
        assert a.shape == b.shape, task
        if a.dtype == torch.int64:
            assert (a == b).float().mean() > 0.999, task
        else:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_file_folder_array_and_list_match_test_step(model, tmp_path):
    first, second = _bgr((50, 70), 1), _bgr((40, 30), 2)
    folder = tmp_path / 'images'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), first)
    cv2.imwrite(str(folder / 'b.png'), second)
    (folder / 'notes.txt').write_text('not an image')
    tasks = list(model.tasks)
    refs = [_reference(model, first), _reference(model, second)]
    inferencer = MultiTaskInferencer(model, show_progress=False)
    assert inferencer.input_size == SIZE  # read from the config

    single = inference_model(model, str(folder / 'a.png'))
    _assert_same(single, refs[0], tasks)
    assert single.pred('depth').shape[-2:] == (50, 70)

    result = inferencer(str(folder), return_datasamples=True, batch_size=2)
    assert len(result['predictions']) == 2
    assert [osp.basename(f) for f, _ in result['skipped']] == ['notes.txt']
    assert 'notes.txt' in result['skipped'][0][1]
    for pred, ref in zip(result['predictions'], refs):
        _assert_same(pred, ref, tasks)

    array = inferencer(second, return_datasamples=True)['predictions'][0]
    _assert_same(array, refs[1], tasks)
    listed = inference_model(model, [str(folder / 'a.png'), second])
    for pred, ref in zip(listed, refs):
        _assert_same(pred, ref, tasks)
    plain = inferencer(second)['predictions'][0]
    assert set(plain) == set(tasks)
    np.testing.assert_array_equal(
        plain['semseg'], array.pred('semseg').numpy()
    )


def test_keep_ratio_and_pad_matches_test_step(model):
    image = _bgr((20, 60), 3)
    inferencer = MultiTaskInferencer(
        model, resize_mode='keep_ratio_pad', show_progress=False
    )
    pred = inferencer(image, return_datasamples=True)['predictions'][0]
    _assert_same(pred, _reference(model, image, 'keep_ratio_pad'), model.tasks)


def test_unreadable_file_is_named(model, tmp_path):
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'\xff\xd8 not really a jpeg')
    inferencer = MultiTaskInferencer(model, show_progress=False)
    with pytest.raises(UnreadableImageError, match='broken.jpg'):
        inferencer(str(bad))
    with pytest.raises(
        UnreadableImageError, match='missing.png: no such file'
    ):
        inferencer(str(tmp_path / 'missing.png'))


def test_gray_rgba_and_16_bit_inputs(model, tmp_path):
    inferencer = MultiTaskInferencer(model, show_progress=False)
    bgr = _bgr((30, 40), 4)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = np.concatenate([bgr, np.full((30, 40, 1), 7, np.uint8)], 2)
    deep = bgr.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    preds = inferencer([gray, bgra, deep, str(tmp_path / 'deep.png')])
    assert all(p['normals'].shape == (3, 30, 40) for p in preds['predictions'])
    # the alpha channel is dropped: BGRA predicts as its BGR
    same = inferencer(bgr)['predictions'][0]
    for task in model.tasks:
        np.testing.assert_array_equal(
            preds['predictions'][1][task], same[task]
        )
    # the 16-bit file reads as the array it was written from
    for task in model.tasks:
        np.testing.assert_array_equal(
            preds['predictions'][2][task], preds['predictions'][3][task]
        )


def test_every_written_file_decodes_to_the_prediction(model, tmp_path):
    inferencer = MultiTaskInferencer(model, show_progress=False)
    image = _bgr((36, 52), 5)
    cv2.imwrite(str(tmp_path / 'room.png'), image)
    out = tmp_path / 'out'
    pred = inferencer(
        str(tmp_path / 'room.png'), return_datasamples=True, out_dir=str(out)
    )['predictions'][0]

    def read(name, kind, palette=None):
        return read_prediction_file(str(out / name), kind, palette)

    labels = pred.pred('semseg').numpy()
    np.testing.assert_array_equal(
        read('semseg/room.png', 'segmentation'), labels
    )
    palette = task_palette('semseg', 9, inferencer.dataset_meta)
    np.testing.assert_array_equal(
        read('semseg/room_color.png', 'segmentation', palette), labels
    )
    depth = pred.pred('depth').numpy()
    np.testing.assert_array_equal(read('depth/room.npy', 'depth'), depth)
    millimetres = read('depth/room_mm.png', 'depth')
    assert (
        np.abs(millimetres - np.clip(depth, 0, 65.535)).max() <= 0.0005 + 1e-6
    )
    colour = cv2.imread(str(out / 'depth/room_color.png'))[..., ::-1]
    expected = draw_depth(None, {'pred': depth}, DrawStyle('depth')).tiles[
        'pred'
    ]
    np.testing.assert_array_equal(colour, expected)
    normals = pred.pred('normals').numpy()
    np.testing.assert_array_equal(read('normals/room.npy', 'normals'), normals)
    assert np.abs(read('normals/room_rgb.png', 'normals') - normals).max() <= (
        0.5 / 127.5 + 1e-6
    )
    for task in ('saliency', 'edge'):
        prob = pred.pred(task).numpy()
        assert (
            np.abs(read(f'{task}/room.png', task) - prob).max()
            <= 0.5 / 255 + 1e-6
        )
    panel = cv2.imread(str(out / 'panel/room.png'))[..., ::-1]
    drawn = inferencer.visualizer.draw_panel(
        image[..., ::-1], pred, draw_gt=False
    )
    np.testing.assert_array_equal(panel, drawn)


def _by_hand_flip_tta(model, bgr):
    """The mean of the plain and the mirrored pass, computed here from the logits."""
    rgb = bgr[..., ::-1]
    resized = mmcv.imresize(rgb, SIZE[::-1], interpolation='bilinear')
    x = torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))[
        None
    ]
    x = model.data_preprocessor(dict(inputs=[x[0]]), False)['inputs']
    with torch.no_grad():
        plain = model.decode(x)['final']
        mirrored = model.decode(x.flip(-1))['final']
    out = {}
    for task, spec in model.tasks.items():
        kind = spec['kind']
        back = mirrored[task].flip(-1)
        if kind == 'normals':
            back = back * torch.tensor([-1.0, 1.0, 1.0]).view(1, 3, 1, 1)
        views = [
            torch.nn.functional.interpolate(
                v, size=rgb.shape[:2], mode='bilinear', align_corners=False
            )
            for v in (plain[task], back)
        ]
        if kind == 'segmentation':
            mean = sum(v.softmax(1) for v in views) / 2
            out[task] = mean.argmax(1, keepdim=True)[0]
        elif kind == 'normals':
            out[task] = unit_vectors(sum(unit_vectors(v) for v in views) / 2)[
                0
            ]
        else:
            soft = [task_kind(kind).finalize(v) for v in views]
            out[task] = ((soft[0] + soft[1]) / 2)[0]
    return out


def test_flip_tta_is_the_mean_of_both_passes(model):
    image = _bgr((28, 44), 6)
    inferencer = MultiTaskInferencer(model, tta=True, show_progress=False)
    pred = inferencer(image, return_datasamples=True)['predictions'][0]
    expected = _by_hand_flip_tta(model, image)
    for task, want in expected.items():
        got = pred.pred(task)
        if want.dtype == torch.int64:
            assert (got == want).float().mean() > 0.999, task
        else:
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    # without the sign of x the normals would differ
    no_tta = inferencer.model.test_step(
        MultiTaskInferencer(model, show_progress=False)
        .preprocess([image])
        .__next__()[0]
    )[0]
    assert not torch.allclose(no_tta.pred('normals'), pred.pred('normals'))


def test_multi_scale_tta_refused_for_ctal_only(model):
    views = []
    for size in ((32, 48), (64, 96)):
        sample = MultiTaskDataSample(
            metainfo=dict(ori_shape=(32, 48), img_shape=size, flip=False)
        )
        views.append((torch.zeros(3, *size), sample))
    data = dict(
        inputs=[[views[0][0]], [views[1][0]]],
        data_samples=[[views[0][1]], [views[1][1]]],
    )
    tta = MultiTaskTTAModel(model)
    if 'CTAL' in type(model.decoder).__name__:
        with pytest.raises(ValueError, match='accepts one input size'):
            tta.test_step(data)
    else:
        merged = tta.test_step(data)
        assert merged[0].pred('depth').shape == (1, 32, 48)


def test_init_model_refuses_another_models_checkpoint(tmp_path):
    other = init_model(tiny_config('hps'))
    path = str(tmp_path / 'hps.pth')
    torch.save({'state_dict': other.state_dict(), 'meta': {}}, path)
    with pytest.raises(CheckpointMismatchError, match='decoder') as error:
        init_model(tiny_config('ctal'), path)
    assert 'hps.pth does not fit' in str(error.value)
    # its own checkpoint loads, with the dataset's meta
    model = init_model(tiny_config('hps'), path)
    assert torch.equal(
        model.state_dict()['backbone.conv1.weight'],
        other.state_dict()['backbone.conv1.weight'],
    )
