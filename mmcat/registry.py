"""Where mmcat's modules register.

MMDetection's and MMSegmentation's ``MODELS`` registries are children of
mmengine's root ``MODELS``; a lookup in a child falls back to its ancestors.
Registering into the root therefore makes one class visible to
``mmdet.registry.MODELS``, ``mmseg.registry.MODELS`` and mmengine alike, and it
is also where ``mmcv.cnn.build_conv_layer`` looks for convolution types.
Optimizer wrappers go to the root ``OPTIM_WRAPPERS`` for the same reason:
``optim_wrapper=dict(type=...)`` of an mmdet or mmseg config finds them there.
"""
from mmengine.registry import MODELS, OPTIM_WRAPPERS

__all__ = ['MODELS', 'OPTIM_WRAPPERS']
