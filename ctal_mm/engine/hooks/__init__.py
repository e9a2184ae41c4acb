
from .visualization_hook import MultiTaskVisualizationHook  # noqa: F401
