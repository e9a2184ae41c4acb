"""Backbone weights from a file, verified key by key: ``VerifiedPretrained``.

MMEngine's ``Pretrained`` initialiser loads with ``strict=False``: a file of
another backbone, or one whose keys carry another prefix, only logs warnings
and the run goes on from a partly random backbone. This initialiser compares
the file with the backbone first (:func:`ctal_mm.utils.check_state_dict`) and
stops the run naming the first missing, unexpected and reshaped keys; after
loading it marks the backbone's submodules initialised, so no later
``init_weights`` overwrites what came from the file.

    backbone=dict(..., init_cfg=dict(
        type='VerifiedPretrained', checkpoint='checkpoints/x.pth',
        prefix='backbone.', source='how to get this file'))

``checkpoint=None`` leaves the backbone as it was built (from scratch); the
usual way to train from scratch is ``model.backbone.init_cfg=None``, which
gives the backbone its own default initialisation.
"""

import os.path as osp
from typing import Optional

from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.model.weight_init import update_init_info
from mmengine.runner.checkpoint import CheckpointLoader

from ctal_mm.model_converters.reference_keys import SWIN_RECOMPUTED_BUFFERS
from ctal_mm.registry import WEIGHT_INITIALIZERS
from ctal_mm.utils.model_weights import (
    CheckpointMismatchError,
    check_state_dict,
    model_state_dict,
)


@WEIGHT_INITIALIZERS.register_module(name='VerifiedPretrained')
class VerifiedPretrainedInit:
    """Load a module's every parameter and buffer from ``checkpoint``.

    Args:
        checkpoint (str, optional): The file (read through ctal_mm's safe
            loader: tensors only, no code). None: keep the built weights.
        prefix (str): Only the file's keys under this prefix are the
            module's (stripped before comparing); other keys (a classifier
            head) are ignored. ``''``: every key.
        source (str): Where the file comes from and how to make it; named
            when the file is missing or does not fit.
        map_location (str): Where the tensors are loaded.
    """

    def __init__(
        self,
        checkpoint: Optional[str],
        prefix: str = 'backbone.',
        source: str = '',
        map_location: str = 'cpu',
    ):
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.source = source
        self.map_location = map_location
        self.wholemodule = False  # set by mmengine's initialize()

    def _fix(self) -> str:
        hint = f' {self.source}' if self.source else ''
        return (
            f'{hint} Set the path with --cfg-options '
            'model.backbone.init_cfg.checkpoint=PATH, or train from scratch '
            'with --cfg-options model.backbone.init_cfg=None (see '
            'docs/reproduce.md).'
        )

    def __call__(self, module) -> None:
        name = type(module).__name__
        if self.checkpoint is None:
            print_log(
                f'{name}: init_cfg.checkpoint is None, the backbone trains '
                'from scratch.',
                logger='current',
            )
            return
        path = osp.expanduser(str(self.checkpoint))
        if '://' not in path and not osp.isfile(path):
            raise FileNotFoundError(
                f'The pretrained weights of the {name} backbone, '
                f'{self.checkpoint!r}, do not exist.' + self._fix()
            )
        loaded = CheckpointLoader.load_checkpoint(
            path, map_location=self.map_location
        )
        state_dict = model_state_dict(loaded)
        if self.prefix:
            state_dict = {
                k[len(self.prefix) :]: v
                for k, v in state_dict.items()
                if k.startswith(self.prefix)
            }
            if not state_dict:
                raise CheckpointMismatchError(
                    f'{self.checkpoint} has no key starting with '
                    f'{self.prefix!r}: it is not a converted {name} file '
                    '(init_cfg.prefix names where its backbone keys are).'
                    + self._fix()
                )
        # Swin-V2's relative-position tables are computed from the window
        # size when the backbone is built and replace any loaded copy
        expected = {
            k: v
            for k, v in module.state_dict().items()
            if not SWIN_RECOMPUTED_BUFFERS.search(k)
        }
        check_state_dict(
            expected,
            state_dict,
            str(self.checkpoint),
            what=f'the {name} backbone',
            hint=self._fix(),
        )
        module.load_state_dict(state_dict, strict=False)
        # what came from the file stays: no submodule's init_weights runs
        # after this one
        for sub in module.modules():
            if isinstance(sub, BaseModule) and sub is not module:
                sub._is_init = True
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())
        print_log(
            f'{name}: {len(state_dict)} tensors loaded from '
            f'{self.checkpoint}, every key checked.',
            logger='current',
        )

    def _get_init_info(self) -> str:
        return f'{self.__class__.__name__}: load from {self.checkpoint}'
