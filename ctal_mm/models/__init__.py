from .data_preprocessor import MultiTaskDataPreProcessor  # noqa: F401
