from .compat import (
    UnsafeCheckpointError,
    checkpoint_safe_globals,
    install_safe_checkpoint_loading,
    safe_torch_load,
)
from .model_weights import (
    CheckpointMismatchError,
    check_state_dict,
    load_model_weights,
)
from .setup_env import register_all_modules

__all__ = [
    'register_all_modules',
    'install_safe_checkpoint_loading',
    'safe_torch_load',
    'checkpoint_safe_globals',
    'UnsafeCheckpointError',
    'CheckpointMismatchError',
    'check_state_dict',
    'load_model_weights',
]
