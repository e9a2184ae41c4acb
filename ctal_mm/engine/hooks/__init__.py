from .checkpoint_hook import (  # noqa: F401
    CheckpointHook,
    NonFiniteCheckpointError,
)
from .config_check_hook import ConfigCheckHook  # noqa: F401
from .epoch_seed_hook import EpochSeedHook  # noqa: F401
from .non_finite_loss_hook import (  # noqa: F401
    NonFiniteGradientError,
    NonFiniteLossError,
    NonFiniteLossHook,
)
from .prediction_files_hook import PredictionFilesHook  # noqa: F401
from .preemption_hook import PreemptionHook  # noqa: F401
from .skipped_sample_hook import SkippedSampleHook  # noqa: F401
from .visualization_hook import MultiTaskVisualizationHook  # noqa: F401
