"""ctal_mm: multitask dense prediction with Cross-Task Affinity Learning, OpenMMLab style."""

from .utils.compat import install_safe_checkpoint_loading
from .utils.dependency_noise import import_dependencies_quietly
from .version import __version__

# before any ctal_mm module imports mmseg/mmcv: their import-time lines about optional parts
# ctal_mm does not use are filtered there (see utils/dependency_noise.py)
import_dependencies_quietly()

# Any process that imports ctal_mm (every Runner built from our configs does, through the
# registries' locations) loads checkpoints safely; see utils/compat.py for why.
install_safe_checkpoint_loading()

__all__ = ['__version__']
