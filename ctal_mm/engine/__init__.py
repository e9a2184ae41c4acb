from .hooks import *  # noqa: F401,F403
from .optimizers import AutocastOptimWrapper  # noqa: F401
