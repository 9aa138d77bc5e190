"""mmcat: the CAT backbone (Cross Attention in Vision Transformer) for
MMDetection 3.x and MMSegmentation 1.x.

Importing this package registers every mmcat module into mmengine's root
registries, where both MMDetection and MMSegmentation find them; configs do so
with ``custom_imports = dict(imports=['mmcat'], allow_failed_imports=False)``.
It changes nothing in torch or mmengine: the runner-level fixes are
:func:`mmcat.engine.setup_runtime` (``tools/train.py`` and ``tools/test.py``
call it; configs can name ``runner_type='MMCATRunner'``).
"""
from .version import __version__
from . import models  # noqa: F401  (registers CAT and its convolutions)
from . import engine  # noqa: F401  (registers the hooks and MMCATRunner)

__all__ = ['__version__']
