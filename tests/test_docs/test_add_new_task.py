"""The "Add a task kind" section of docs/add_new_task.md works as written.

Its code blocks are run as they stand: the Python ones register the kind, the loss and the
metric; the config block is loaded (its ``_base_`` from configs/ctal/). A small model with the new
task then trains one step on random ground truth and its predictions are scored.
"""

import copy
import importlib.util
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from ctal_mm.apis import write_prediction_files
from ctal_mm.datasets.transforms import MultiTaskPad
from ctal_mm.engine.config_checks import ConfigError, check_config
from ctal_mm.registry import METRICS, MODELS
from ctal_mm.structures import TASK_KINDS, task_kind
from ctal_mm.testing import random_multitask_batch
from ctal_mm.utils import register_all_modules

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DOC = osp.join(ROOT, 'docs', 'add_new_task.md')
SECTION = '## Add a task kind'
NEW_TYPES = {MODELS: 'MaskedIntensityL1Loss', METRICS: 'IntensityMetric'}


def _tiny_models():
    # tests/test_apis/tiny_models.py, by path: this directory is not on sys.path
    path = osp.join(ROOT, 'tests', 'test_apis', 'tiny_models.py')
    spec = importlib.util.spec_from_file_location('doc_tiny_models', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def section_code_blocks():
    """(Python module blocks, config blocks) of the section, in order."""
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    assert SECTION in text, f'{DOC} has no section {SECTION!r}'
    section = text.split(SECTION, 1)[1].split('\n## ', 1)[0]
    blocks = re.findall(r'```python\n(.*?)```', section, flags=re.DOTALL)
    configs = [b for b in blocks if '_base_' in b]
    modules = [b for b in blocks if '_base_' not in b]
    return modules, configs


@pytest.fixture
def doc_kind():
    """Runs the section's Python blocks as the module my_project.intensity; undoes their
    registrations afterwards."""
    register_all_modules()
    modules, configs = section_code_blocks()
    assert len(modules) == 3 and len(configs) == 1, (
        'the section should show the kind, the loss and the metric, then one config; '
        f'found {len(modules)} Python block(s) and {len(configs)} config block(s)'
    )
    namespace = {'__name__': 'my_project.intensity'}
    try:
        for block in modules:
            exec(compile(block, DOC, 'exec'), namespace)
        yield namespace, configs[0]
    finally:
        TASK_KINDS.pop('intensity', None)
        for registry, name in NEW_TYPES.items():
            registry._module_dict.pop(name, None)


def _doc_config(text, tmp_path):
    # the config lives in configs/ctal/: its _base_ is relative to that folder
    text = text.replace("'./", f"'{osp.join(ROOT, 'configs', 'ctal')}/")
    path = tmp_path / 'intensity_config.py'
    path.write_text(text)
    return Config.fromfile(str(path), import_custom_modules=False)


def test_the_documented_kind_trains_predicts_and_scores(doc_kind, tmp_path):
    _, config_text = doc_kind
    kind = task_kind('intensity')
    assert kind.default_loss == dict(type='MaskedIntensityL1Loss')

    doc_cfg = _doc_config(config_text, tmp_path)
    assert doc_cfg.custom_imports.imports == ['my_project.intensity']
    task_cfg = doc_cfg.model.tasks.intensity
    assert task_cfg.kind == 'intensity'

    # the config checks know the new loss and metric; the only problem is the dataset
    with pytest.raises(ConfigError) as error:
        check_config(doc_cfg)
    problems = error.value.problems
    assert len(problems) == 2, problems  # the train and the val dataset
    assert all(
        '.dataset: SyntheticScenesDataset: tasks=' in p
        and "includes unknown ['intensity']" in p
        for p in problems
    ), problems
    assert [p.split('.', 1)[0] for p in problems] == [
        'train_dataloader',
        'val_dataloader',
    ]
    wrong = copy.deepcopy(doc_cfg)
    wrong.model.tasks.intensity.loss = dict(type='MaskedL1DepthLoss')
    wrong.model.tasks.intensity.channels = 3
    wrong.val_evaluator.task_metrics.intensity = dict(type='DepthMetric')
    with pytest.raises(ConfigError) as error:
        check_config(wrong)
    message = str(error.value)
    assert (
        "'intensity' is a intensity task. Use MaskedIntensityL1Loss" in message
    )
    assert 'Set model.tasks.intensity.channels=1' in message
    assert "'intensity' is a intensity task. Use IntensityMetric" in message

    # a small model with the new task: one training step on random ground truth
    tiny = _tiny_models()
    cfg = tiny.tiny_config()
    cfg.model.tasks.intensity = task_cfg
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    batch = random_multitask_batch(model.tasks, tiny.SIZE, batch_size=2)
    gt = torch.stack([s.gt('intensity') for s in batch['data_samples']])
    assert ((gt == -1) | ((gt >= 0) & (gt < 1))).all() and (gt == -1).any()
    wrapper = build_optim_wrapper(
        model, dict(optimizer=dict(type='SGD', lr=0.01))
    )
    losses = model.train_step(batch, wrapper)
    intensity_losses = [v for k, v in losses.items() if 'intensity' in k]
    assert intensity_losses and all(
        torch.isfinite(v) and v > 0 for v in intensity_losses
    )

    # its predictions, scored by the documented metric
    model.eval()
    samples = model.val_step(batch)
    pred = torch.stack([s.pred('intensity') for s in samples])
    assert pred.shape == gt.shape
    assert ((pred >= 0) & (pred <= 1)).all()
    metric = METRICS.build(
        dict(doc_cfg.val_evaluator.task_metrics.intensity, task='intensity')
    )
    metric.process(None, [s.to_dict() for s in samples])
    known = gt >= 0
    expected = (pred - gt).abs()[known].mean().item()
    result = metric.compute_metrics(metric.results)
    assert result['mae'] == pytest.approx(expected, rel=1e-5)
    assert metric.LOWER_IS_BETTER == {'mae'}

    # the transforms pad with its ignore value; its predictions are written as gray PNGs
    results = dict(
        img=np.zeros((5, 6, 3), np.uint8),
        task_kinds=dict(intensity='intensity'),
        gt_intensity=np.full((5, 6), 0.5, np.float32),
    )
    padded = MultiTaskPad(size=(8, 8)).transform(results)['gt_intensity']
    assert (padded[5:] == -1).all() and (padded[:5, :6] == 0.5).all()
    files = write_prediction_files(samples[0], str(tmp_path / 'out'), 'x')
    assert [osp.basename(f) for f in files['intensity']] == ['x.png']
