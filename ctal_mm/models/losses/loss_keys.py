"""The keys of the model's loss terms: tuples inside the model, strings in the log.

Inside the model every term of the total loss has a structured key:

* ``(stage, task)``: the task's loss on the decoder stage's prediction, e.g.
  ``('final', 'depth')``;
* :class:`ExtraTerm`: a term of no one stage, added by a loss weighting, e.g. the
  uncertainty regulariser of a task, ``ExtraTerm('uncertainty_reg', task='depth')``, or
  GradNorm's ``ExtraTerm('gradnorm')``.

The loss dict leaves the model with string keys (mmengine's ``parse_losses`` sums the
keys containing ``'loss'`` into the total and logs every key): :func:`format_loss_key`
writes them, ``'final.depth.loss'``, ``'depth.uncertainty_reg.loss'``,
``'gradnorm.loss'``; :func:`parse_loss_key` reads them back for code that receives the
logged dict (the Jacobian optimiser wrapper, the non-finite loss hook).
"""

from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

from torch import Tensor

LOSS_SUFFIX = '.loss'

StageTask = Tuple[str, str]


@dataclass(frozen=True)
class ExtraTerm:
    """A loss term that is not a task's loss at a stage: a weighting's regulariser.

    Args:
        name (str): What the term is, e.g. ``'uncertainty_reg'``, ``'gradnorm'``.
        task (str, optional): The task the term belongs to, if one.
    """

    name: str
    task: Optional[str] = None


LossKey = Union[StageTask, ExtraTerm]


def counts_in_total(key: str) -> bool:
    """Whether mmengine's ``parse_losses`` sums the logged term ``key`` into the total."""
    return 'loss' in key


def format_loss_key(key: LossKey) -> str:
    """``('final', 'depth')`` -> ``'final.depth.loss'``; ``ExtraTerm('uncertainty_reg',
    'depth')`` -> ``'depth.uncertainty_reg.loss'``; ``ExtraTerm('gradnorm')`` ->
    ``'gradnorm.loss'``."""
    if isinstance(key, ExtraTerm):
        body = key.name if key.task is None else f'{key.task}.{key.name}'
    elif (
        isinstance(key, tuple)
        and len(key) == 2
        and all(isinstance(part, str) for part in key)
    ):
        body = '.'.join(key)
    else:
        raise TypeError(
            f'loss key {key!r}: expected (stage, task) for a task loss or '
            'ExtraTerm(name, task=None) (ctal_mm.models.losses.loss_keys) for a '
            'term of no stage; a loss weighting returns its extra terms under '
            'ExtraTerm keys.'
        )
    return body + LOSS_SUFFIX


def format_loss_dict(losses: Mapping[LossKey, Tensor]) -> Dict[str, Tensor]:
    """The model's loss dict as it leaves the model: string keys, same order."""
    return {format_loss_key(key): value for key, value in losses.items()}


def parse_loss_key(key: str, tasks: Sequence[str]) -> Optional[LossKey]:
    """The inverse of :func:`format_loss_key`, given the model's task names.

    ``'<stage>.<task>.loss'`` with ``task`` one of ``tasks`` is ``(stage, task)``;
    ``'<task>.<name>.loss'`` is ``ExtraTerm(name, task)``; any other ``'<name>.loss'`` is
    ``ExtraTerm(name)``. A key without the ``'.loss'`` ending is no key of this format:
    None.
    """
    if not key.endswith(LOSS_SUFFIX) or key == LOSS_SUFFIX:
        return None
    body = key[: -len(LOSS_SUFFIX)]
    head, _, rest = body.partition('.')
    if head and rest in tasks:
        return head, rest
    if head in tasks and rest:
        return ExtraTerm(rest, task=head)
    return ExtraTerm(body)
