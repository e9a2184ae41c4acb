"""Every task's metric in one evaluator entry, plus the multitask gain delta_m."""

from typing import Dict, Mapping, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable

from ctal_mm.registry import METRICS


@METRICS.register_module()
class MultiTaskMetric(BaseMetric):
    """Runs one metric per task and reports ``'<task>/<metric>'`` and ``'delta_m'``.

    delta_m = (1/T) sum_t (-1)^{l_t} (M_t - M_stl,t) / M_stl,t * 100 over the T (task, metric)
    pairs listed in ``stl_baselines``, with l_t = 1 where lower is better (each metric class
    declares its direction once, in ``LOWER_IS_BETTER``). Positive = better than single-task.

    Args:
        task_metrics: ``{task: metric config}``; ``task=`` is filled in.
        stl_baselines: ``{task: {metric: single-task value}}``: the metrics that enter delta_m
            and the single-task numbers they are compared with. Without it, no delta_m.
    """

    # '' (not None): the keys stay '<task>/<metric>' and 'delta_m', which configs' save_best
    # and the logs name, and mmengine does not warn that no prefix is set
    default_prefix = ''

    def __init__(
        self,
        task_metrics: Mapping[str, dict],
        stl_baselines: Optional[Mapping[str, Mapping[str, float]]] = None,
        collect_device: str = 'cpu',
        prefix: Optional[str] = None,
    ):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not task_metrics:
            raise ValueError(
                'MultiTaskMetric needs task_metrics={task: dict(type=...)}.'
            )
        self.metrics = {
            task: METRICS.build(dict(cfg, task=task))
            for task, cfg in task_metrics.items()
        }
        self.stl_baselines = {
            t: dict(v) for t, v in (stl_baselines or {}).items()
        }
        for task, values in self.stl_baselines.items():
            if task not in self.metrics:
                raise KeyError(
                    f'stl_baselines names task {task!r}, which has no entry in '
                    f'task_metrics ({sorted(self.metrics)}).'
                )

    @property
    def dataset_meta(self):
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, meta):
        self._dataset_meta = meta
        for metric in self.metrics.values():
            metric.dataset_meta = meta

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append(
                {
                    task: metric.image_statistics(*metric.maps(sample))
                    for task, metric in self.metrics.items()
                }
            )

    def evaluate(self, size: int) -> dict:
        for metric in self.metrics.values():
            metric.flush()
        return super().evaluate(size)

    def compute_metrics(self, results) -> Dict[str, float]:
        out = {}
        for task, metric in self.metrics.items():
            stats = [r[task] for r in results if r[task] is not None]
            for name, value in metric.reduce(stats).items():
                out[f'{task}/{name}'] = float(value)
        if self.stl_baselines:
            out['delta_m'] = self.delta_m(out)
        self._log(out)
        return out

    def delta_m(self, values: Mapping[str, float]) -> float:
        terms = []
        for task, baselines in self.stl_baselines.items():
            lower = self.metrics[task].LOWER_IS_BETTER
            for name, base in baselines.items():
                key = f'{task}/{name}'
                if key not in values:
                    raise KeyError(
                        f'stl_baselines.{task}.{name}: the {task} metric reports '
                        f'{sorted(k for k in values if k.startswith(task + "/"))}.'
                    )
                sign = -1.0 if name in lower else 1.0
                terms.append(sign * (values[key] - base) / base * 100)
        return sum(terms) / len(terms)

    def _log(self, values):
        table = PrettyTable(['task', 'metric', 'value'])
        for key, value in values.items():
            task, _, name = key.partition('/')
            table.add_row([task, name or '-', f'{value:.4f}'])
        print_log(
            '\n' + table.get_string(), logger=MMLogger.get_current_instance()
        )
