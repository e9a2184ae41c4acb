"""The Runner of ctal_mm configs (``runner_type='MultiTaskRunner'`` in default_runtime.py)."""

import copy

from mmengine.runner import Runner

from ctal_mm.registry import RUNNERS

from .config_loading import resolve_config


@RUNNERS.register_module()
class MultiTaskRunner(Runner):
    """mmengine's Runner, built from a config whose dataset task set and data preprocessor are
    resolved first (:func:`~ctal_mm.engine.config_loading.resolve_config`): a config read with
    plain ``Config.fromfile`` builds the same model, datasets and evaluators as one read with
    :func:`~ctal_mm.engine.config_loading.load_config`."""

    @classmethod
    def from_cfg(cls, cfg) -> 'Runner':
        return super().from_cfg(resolve_config(copy.deepcopy(cfg)))
