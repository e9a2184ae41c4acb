"""MultiTaskDataSample: one field per task and stage, errors that list what is there."""

import pytest
import torch
from mmengine.structures import PixelData

from ctal_mm.structures import MultiTaskDataSample


def test_ground_truth_and_predictions_are_separate_pixel_data_fields():
    sample = MultiTaskDataSample(metainfo=dict(img_shape=(2, 3)))
    depth = torch.arange(6.0).view(1, 2, 3)
    sample.set_gt('depth', depth)
    sample.set_gt('semseg', torch.zeros(1, 2, 3, dtype=torch.long))
    sample.set_pred('depth', depth * 2)
    assert isinstance(sample.gt_depth, PixelData)
    assert torch.equal(sample.gt('depth'), depth)
    assert torch.equal(sample.pred('depth'), depth * 2)
    assert sample.gt_tasks == ['depth', 'semseg']  # sorted
    assert sample.pred_tasks == ['depth']
    assert sample.has_gt('semseg') and not sample.has_gt('normals')
    assert sample.img_shape == (2, 3)


def test_setting_a_field_again_replaces_it():
    sample = MultiTaskDataSample()
    sample.set_pred('edge', torch.zeros(1, 2, 2))
    sample.set_pred('edge', torch.ones(1, 2, 2))
    assert sample.pred('edge').sum() == 4
    assert sample.pred_tasks == ['edge']


def test_a_missing_task_names_the_field_and_what_the_sample_has():
    sample = MultiTaskDataSample()
    sample.set_gt('depth', torch.ones(1, 2, 2))
    with pytest.raises(KeyError, match=r"no 'gt_normals'.*\['depth'\]"):
        sample.gt('normals')
    with pytest.raises(KeyError, match=r"no 'pred_depth'.*\[\]"):
        sample.pred('depth')


def test_a_pixel_data_field_rejects_a_map_of_another_size():
    # PixelData keeps every map of one field at one H x W: a wrong-size map fails early
    sample = MultiTaskDataSample()
    sample.set_gt('depth', torch.ones(1, 2, 2))
    with pytest.raises(AssertionError):
        sample.gt_depth.extra = torch.ones(1, 3, 3)
