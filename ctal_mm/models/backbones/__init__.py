from .pretrained_init import VerifiedPretrainedInit  # noqa: F401
