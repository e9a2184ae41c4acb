"""Loss-term keys: (stage, task) and ExtraTerm inside the model, strings in the log."""

import pytest
import torch

from ctal_mm.engine.hooks.non_finite_loss_hook import describe_term
from ctal_mm.models.losses import FixedWeighting, UncertaintyWeighting
from ctal_mm.models.losses.loss_keys import (
    ExtraTerm,
    format_loss_dict,
    format_loss_key,
    parse_loss_key,
)
from ctal_mm.models.mtl import group_task_losses

TASKS = ('semseg', 'depth')
LOGGED = {
    ('initial', 'semseg'): 'initial.semseg.loss',
    ('final', 'depth'): 'final.depth.loss',
    ('scale_0', 'depth'): 'scale_0.depth.loss',
    ExtraTerm('uncertainty_reg', 'depth'): 'depth.uncertainty_reg.loss',
    ExtraTerm('gradnorm'): 'gradnorm.loss',
    ExtraTerm('scalarization.params'): 'scalarization.params.loss',
}


@pytest.mark.parametrize('key, logged', LOGGED.items())
def test_keys_format_to_the_logged_names_and_parse_back(key, logged):
    assert format_loss_key(key) == logged
    assert parse_loss_key(logged, TASKS) == key


def test_a_key_of_another_form_is_not_parsed():
    assert parse_loss_key('loss', TASKS) is None
    assert parse_loss_key('acc_seg', TASKS) is None


def test_a_string_key_from_a_weighting_is_a_clear_error():
    with pytest.raises(TypeError, match='ExtraTerm'):
        format_loss_dict({'gradnorm': torch.tensor(1.0)})


def test_a_weighting_given_string_keys_names_the_expected_form():
    with pytest.raises(TypeError, match=r'\(stage, task\)'):
        FixedWeighting()({'final.depth': torch.tensor(1.0)}, {'depth': 1.0})


def test_the_model_loss_dict_round_trips_through_the_jacobian_grouping():
    raw = {
        ('initial', 'semseg'): torch.tensor(1.0),
        ('final', 'semseg'): torch.tensor(2.0),
        ('final', 'depth'): torch.tensor(3.0),
    }
    weighted = UncertaintyWeighting(list(TASKS))(
        raw, {'semseg': 1.0, 'depth': 1.0}
    )
    logged = format_loss_dict(weighted)
    assert list(logged) == [
        'initial.semseg.loss',
        'final.semseg.loss',
        'final.depth.loss',
        'semseg.uncertainty_reg.loss',
        'depth.uncertainty_reg.loss',
    ]
    per_task, extra = group_task_losses(logged, list(TASKS))
    torch.testing.assert_close(torch.stack(per_task), torch.tensor([3.0, 3.0]))
    torch.testing.assert_close(extra, torch.tensor(0.0))  # log-variances 0


def test_the_non_finite_hook_tells_task_terms_from_regularisers():
    assert describe_term('final.depth.loss', TASKS) == (
        "final.depth.loss (task 'depth', final loss)"
    )
    assert (
        describe_term('depth.uncertainty_reg.loss', TASKS)
        == 'depth.uncertainty_reg.loss'
    )
