"""mmcat: the CAT backbone (Cross Attention in Vision Transformer) for
MMDetection 3.x and MMSegmentation 1.x.

Importing this package registers every mmcat module into mmengine's root
registries, where both MMDetection and MMSegmentation find them; configs do so
with ``custom_imports = dict(imports=['mmcat'], allow_failed_imports=False)``.
"""
from .version import __version__
from . import utils  # noqa: F401  (torch>=2.6 checkpoint compatibility)
from . import models  # noqa: F401  (registers CAT and the convolution primitives)
from .engine import enable_atomic_local_writes

enable_atomic_local_writes()  # a killed run never leaves a partial checkpoint

__all__ = ['__version__']
