"""Counting the unreadable samples a dataset skipped (``skip_unreadable=True``)."""

import torch
import torch.distributed as dist
from mmengine.hooks import Hook

from ctal_mm.datasets.base_multitask_dataset import SKIPPED_KEY
from ctal_mm.registry import HOOKS

SKIPPED_INFO = (
    'skipped_unreadable_samples'  # message hub key, saved in checkpoints
)


@HOOKS.register_module()
class SkippedSampleHook(Hook):
    """Logs every sample a dataset skipped as unreadable, and the count per epoch.

    The dataset skips in its worker processes, which share nothing with the main one; the
    sample that stands in carries the record (``metainfo['skipped_unreadable']``), so the
    count here is exact whatever ``num_workers``. At the end of each epoch the count (summed
    over ranks) is logged and added to the message hub's ``skipped_unreadable_samples``.
    Nothing is logged while nothing is skipped.

    Args:
        max_listed: how many skipped files the epoch summary names.
    """

    priority = 'LOW'

    def __init__(self, max_listed: int = 5):
        self.max_listed = max_listed
        self.skipped = []

    def before_train_epoch(self, runner) -> None:
        self.skipped = []

    def after_train_iter(
        self, runner, batch_idx, data_batch=None, outputs=None
    ):
        samples = (
            data_batch.get('data_samples')
            if isinstance(data_batch, dict)
            else None
        )
        for sample in samples or []:
            meta = getattr(sample, 'metainfo', {})
            for record in meta.get(SKIPPED_KEY, ()):
                self.skipped.append(record)
                runner.logger.warning(
                    f'Iteration {runner.iter + 1}: sample {record["index"]} '
                    f'({record["img_path"]}) was unreadable and replaced: '
                    f'{record["error"]}'
                )

    def after_train_epoch(self, runner) -> None:
        count = len(self.skipped)
        if dist.is_available() and dist.is_initialized():
            # every rank reaches this point once per epoch: the collective cannot hang
            total = torch.tensor([count], dtype=torch.int64)
            if dist.get_backend() == 'nccl':
                total = total.cuda()
            dist.all_reduce(total)
            count = int(total.item())
        if not count:
            return
        overall = runner.message_hub.get_info(SKIPPED_INFO, 0) + count
        runner.message_hub.update_info(SKIPPED_INFO, overall)
        listed = ', '.join(
            str(r['img_path']) for r in self.skipped[: self.max_listed]
        )
        more = len(self.skipped) - self.max_listed
        runner.logger.warning(
            f'Epoch {runner.epoch + 1}: {count} unreadable sample(s) skipped '
            f'and replaced by others ({overall} in this run)'
            + (f'; on this rank: {listed}' if listed else '')
            + (f' and {more} more' if more > 0 else '')
            + '. Fix or remove these files (see docs/dataset_prepare.md).'
        )
