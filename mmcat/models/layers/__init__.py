from .attention import CrossPatchAttention, InnerPatchAttention
from .blocks import AttentionBlock, CrossAttentionBlock
from .embed import PatchEmbed, PatchProjection
from .mlp import Mlp
from .space_to_depth import SpaceToDepth, space_to_depth

__all__ = [
    'AttentionBlock', 'CrossAttentionBlock', 'CrossPatchAttention',
    'InnerPatchAttention', 'Mlp', 'PatchEmbed', 'PatchProjection',
    'SpaceToDepth', 'space_to_depth'
]
