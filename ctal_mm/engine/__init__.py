from .config_loading import load_config  # noqa: F401
from .distributed import CPUDistributedDataParallel  # noqa: F401
from .hooks import *  # noqa: F401,F403
from .hooks import MultiTaskVisualizationHook  # noqa: F401
from .loops import EpochBasedTrainLoop  # noqa: F401
from .optimizers import AutocastOptimWrapper, JacobianOptimWrapper  # noqa: F401
