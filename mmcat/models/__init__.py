from . import layers  # noqa: F401  (registers the convolution primitives)
from .backbones import CAT, CATStage
from .layers import CPUInferencePolicy, plain_forward

__all__ = ['CAT', 'CATStage', 'CPUInferencePolicy', 'plain_forward']
