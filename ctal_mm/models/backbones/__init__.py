from .pretrained_init import VerifiedPretrainedInit  # noqa: F401
from .vit import VIT_ARCHS, PatchViT, resample_pos_embed  # noqa: F401
