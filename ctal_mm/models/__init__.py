from .backbones import VerifiedPretrainedInit  # noqa: F401
from .data_preprocessor import MultiTaskDataPreProcessor  # noqa: F401
from .decoders import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .multitask_model import MultiTaskEncoderDecoder  # noqa: F401
from .necks import *  # noqa: F401,F403
from .single_task import PerTaskEncoders, SingleTaskEncoderDecoder  # noqa: F401
from .task_spec import TaskSpecError, parse_task_spec  # noqa: F401
from .test_time_aug import MultiTaskTTAModel  # noqa: F401
