"""Checking the config against the built model and data before the first step."""

from mmengine.hooks import Hook

from ctal_mm.engine.config_checks import check_runner
from ctal_mm.registry import HOOKS


@HOOKS.register_module()
class ConfigCheckHook(Hook):
    """Runs :func:`ctal_mm.engine.config_checks.check_runner` in ``before_run``.

    tools/train.py checks the config before building anything; this hook repeats those checks
    for runs started from Python (``Runner.from_cfg(cfg).train()``) and adds the ones that
    need the built model: one sample of each built dataloader is run through the data
    preprocessor and the backbone, up to the CTAL affinity module, so an input or crop size
    that does not give its ``feature_size`` is reported before training (and before a
    validation at the end of the first epoch would fail). Problems raise
    :class:`~ctal_mm.engine.config_checks.ConfigError`, one line per config key.

    Args:
        probe_sizes: run the input-size probe (reads one sample per dataloader).
    """

    priority = 'VERY_HIGH'

    def __init__(self, probe_sizes: bool = True):
        self.probe_sizes = probe_sizes

    def before_run(self, runner) -> None:
        check_runner(runner, probe_sizes=self.probe_sizes)
