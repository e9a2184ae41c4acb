"""ctal_mm: multitask dense prediction with Cross-Task Affinity Learning, OpenMMLab style."""

from .utils.compat import install_safe_checkpoint_loading
from .version import __version__

# Any process that imports ctal_mm (every Runner built from our configs does, through the
# registries' locations) loads checkpoints safely; see utils/compat.py for why.
install_safe_checkpoint_loading()

__all__ = ['__version__']
