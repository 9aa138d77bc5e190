from .attention import CrossPatchAttention, InnerPatchAttention
from .blocks import AttentionBlock, CrossAttentionBlock
from .conv_cost import ConvCost, conv_cost, receptive_field
from .cpu_inference import CPUInferencePolicy, plain_forward
from .convs import (CONV_KINDS, DepthwiseSeparableConv2d, DilatedConv2d,
                    FlattenedConv2d, GroupedConv2d, PointwiseConv2d,
                    PointwiseGroupedConv2d, ShuffledGroupedConv2d, SliceConv2d,
                    SpatialSeparableConv2d, conv_weight_to_slice_weight)
from .embed import PatchEmbed, PatchProjection
from .mlp import Mlp
from .space_to_depth import SpaceToDepth, space_to_depth

__all__ = [
    'AttentionBlock', 'CrossAttentionBlock', 'CrossPatchAttention',
    'InnerPatchAttention', 'Mlp', 'PatchEmbed', 'PatchProjection',
    'SpaceToDepth', 'space_to_depth', 'CPUInferencePolicy', 'plain_forward',
    # convolution primitives (conv_cfg types) and their costs
    'ConvCost', 'conv_cost', 'receptive_field', 'CONV_KINDS',
    'DepthwiseSeparableConv2d', 'DilatedConv2d', 'FlattenedConv2d',
    'GroupedConv2d', 'PointwiseConv2d', 'PointwiseGroupedConv2d',
    'ShuffledGroupedConv2d', 'SliceConv2d', 'SpatialSeparableConv2d',
    'conv_weight_to_slice_weight'
]
