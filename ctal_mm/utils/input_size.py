"""The input size a model config is built for, for tools that feed it
random images (get_flops, benchmark_train)."""

from typing import Optional, Sequence, Tuple


def config_input_size(
    cfg, shape: Optional[Sequence[int]] = None
) -> Tuple[int, int]:
    """(H, W): ``shape`` if given, else the data preprocessor's (test) pad
    size, else the size CTAL's affinity module is built for (its feature
    size times the backbone stride: 32 for Swin, 4 for HRNet + fuse neck).

    Raises:
        ValueError: the config says nothing about its input size.
    """
    if shape:
        return tuple(shape)
    preprocessor = cfg.model.get('data_preprocessor') or {}
    for size in (
        (preprocessor.get('test_cfg') or {}).get('size'),
        preprocessor.get('size'),
    ):
        if size:
            return tuple(size)
    affinity = (cfg.model.get('decoder') or {}).get('affinity') or {}
    if 'feature_size' in affinity:
        backbone = str(cfg.model.backbone.get('type', ''))
        stride = 32 if 'Swin' in backbone else 4
        return tuple(s * stride for s in affinity['feature_size'])
    raise ValueError(
        f'{cfg.filename}: cannot tell the input size from the config; '
        'pass --shape H W.'
    )
