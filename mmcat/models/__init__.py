from . import layers  # noqa: F401  (registers the convolution primitives)
from .backbones import CAT, CATStage

__all__ = ['CAT', 'CATStage']
