"""Cost arithmetic of convolutions: output shapes, parameters, multiplications.

Counting convention (the convolution guide's): one multiplication per
multiply-add of a kernel tap with an input value, for the whole batch; bias
additions are not counted. FLOP counters agree with it:
``mmengine.analysis.FlopAnalyzer`` reports multiply-adds (``mults``) and
``torch.utils.flop_counter.FlopCounterMode`` reports two FLOPs per multiply-add
(``flops == 2 * mults``). A transposed convolution is counted in its scatter
form, every input value times every kernel tap, as both counters do.

Two layers of API:

* :func:`conv_cost` -- the cost of a module for an input shape. It works on
  plain torch modules (``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d``,
  ``nn.ChannelShuffle``, ``nn.Identity``, ``nn.Sequential`` as the sum of its
  parts) and on mmcat's primitives (``mmcat.models.layers.convs``).
* closed forms of the guide (:func:`standard_conv_mults`,
  :func:`depthwise_separable_mults`, :func:`spatial_separable_mults`, ...),
  plain integer arithmetic that the module costs are tested against.
"""
from dataclasses import dataclass
from fractions import Fraction
from functools import singledispatch
from math import prod
from typing import Optional, Sequence, Tuple

import torch.nn as nn

from .space_to_depth import SpaceToDepth

Shape = Tuple[int, ...]


@dataclass(frozen=True)
class ConvCost:
    """Cost of one module applied to one input shape.

    Attributes:
        output_shape: output shape, batch first, e.g. (N, C, H, W).
        params: learnable parameters (weights and biases).
        mults: multiplications (= multiply-adds) for the whole batch, bias
            not counted.
    """

    output_shape: Shape
    params: int
    mults: int

    def __add__(self, other: 'ConvCost') -> 'ConvCost':
        """Cost of ``self`` followed by ``other``: parameters and
        multiplications add up, the output shape is ``other``'s."""
        if not isinstance(other, ConvCost):
            return NotImplemented
        return ConvCost(other.output_shape, self.params + other.params,
                        self.mults + other.mults)

    @property
    def flops(self) -> int:
        """FLOPs as torch's ``FlopCounterMode`` counts them (2 per mult)."""
        return 2 * self.mults


# --------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------
def effective_kernel_size(kernel_size: int, dilation: int = 1) -> int:
    """Span of a kernel with ``dilation - 1`` gaps between taps: d(k-1)+1."""
    return dilation * (kernel_size - 1) + 1


def conv_output_size(size: int,
                     kernel_size: int,
                     stride: int = 1,
                     padding: int = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution along one dimension.

    ``floor((size + 2 * padding - dilation * (kernel_size - 1) - 1)
    / stride) + 1``

    Raises:
        ValueError: if the (padded) input is shorter than the dilated kernel.
    """
    span = effective_kernel_size(kernel_size, dilation)
    if size + 2 * padding < span:
        raise ValueError(
            f'input size {size} with padding {padding} is smaller than the '
            f'kernel span {span} (kernel_size={kernel_size}, '
            f'dilation={dilation})')
    return (size + 2 * padding - span) // stride + 1


def conv_transpose_output_size(size: int,
                               kernel_size: int,
                               stride: int = 1,
                               padding: int = 0,
                               dilation: int = 1,
                               output_padding: int = 0) -> int:
    """Output length of a transposed convolution along one dimension.

    ``(size - 1) * stride - 2 * padding + dilation * (kernel_size - 1)
    + output_padding + 1``. It equals a direct convolution (stride 1) of the
    input with ``stride - 1`` zeros inserted between values and a zero border
    of ``dilation * (kernel_size - 1) - padding`` (the guide's picture).
    """
    return ((size - 1) * stride - 2 * padding +
            dilation * (kernel_size - 1) + output_padding + 1)


def receptive_field(kernel_sizes: Sequence[int],
                    dilations: Optional[Sequence[int]] = None,
                    strides: Optional[Sequence[int]] = None) -> int:
    """Receptive field (one dimension) of a stack of convolutions.

    ``1 + sum_i d_i (k_i - 1) prod_{j<i} s_j``. Stacked 3x3 kernels with
    dilation rates 1, 2, 4 give 3, 7 and 15.

    Args:
        kernel_sizes: kernel size of each layer, input side first.
        dilations: dilation of each layer (default all 1).
        strides: stride of each layer (default all 1).
    """
    n = len(kernel_sizes)
    dilations = [1] * n if dilations is None else list(dilations)
    strides = [1] * n if strides is None else list(strides)
    if len(dilations) != n or len(strides) != n:
        raise ValueError(
            f'kernel_sizes, dilations and strides need one entry per layer, '
            f'got {n}, {len(dilations)} and {len(strides)}')
    field, jump = 1, 1
    for k, d, s in zip(kernel_sizes, dilations, strides):
        field += (effective_kernel_size(k, d) - 1) * jump
        jump *= s
    return field


# --------------------------------------------------------------------------
# The guide's closed forms (stride 1, no padding unless stated)
# --------------------------------------------------------------------------
def standard_conv_mults(height: int, width: int, in_channels: int,
                        out_channels: int, kernel_size: int) -> int:
    """``Nc x h x h x D x (H-h+1) x (W-h+1)``: an H x W x D input, Nc
    filters of h x h x D. 7x7x3 -> 5x5x128 with 3x3: 86,400."""
    out_h = height - kernel_size + 1
    out_w = width - kernel_size + 1
    return out_channels * kernel_size**2 * in_channels * out_h * out_w


def depthwise_separable_mults(height: int, width: int, in_channels: int,
                              out_channels: int, kernel_size: int) -> int:
    """``(h x h + Nc) x D x (H-h+1) x (W-h+1)``: D depthwise h x h filters,
    then Nc pointwise 1x1xD filters. 7x7x3 -> 5x5x128 with 3x3: 10,275."""
    out_h = height - kernel_size + 1
    out_w = width - kernel_size + 1
    return (kernel_size**2 + out_channels) * in_channels * out_h * out_w


def depthwise_separable_ratio(out_channels: int, kernel_size: int) -> Fraction:
    """Depthwise separable over standard multiplications: ``1/Nc + 1/h^2``
    (exact for any H, W, D; about ``1/h^2`` when Nc >> h)."""
    return Fraction(1, out_channels) + Fraction(1, kernel_size**2)


def spatial_separable_mults(size: int, kernel_size: int) -> int:
    """Single-channel N x N image, m x 1 then 1 x m kernel (stride 1, no pad).

    ``N (N-m+1) m + (N-m+1)^2 m``; the guide writes it for m = 3 as
    ``(2N-2)(N-2) m``. N = 5, m = 3: 45 + 27 = 72 (standard: 81).
    """
    out = size - kernel_size + 1
    return size * out * kernel_size + out * out * kernel_size


def spatial_separable_ratio(size: int, kernel_size: int) -> Fraction:
    """Spatially separable over standard multiplications on an N x N image;
    tends to ``2/m`` when N >> m."""
    return Fraction(spatial_separable_mults(size, kernel_size),
                    standard_conv_mults(size, size, 1, 1, kernel_size))


def grouped_conv_weights(kernel_h: int, kernel_w: int, in_channels: int,
                         out_channels: int, groups: int = 1) -> int:
    """Weights of a grouped convolution: ``h x w x Din x Dout / g``
    (g groups of ``h x w x Din/g x Dout/g``)."""
    for name, value in (('in_channels', in_channels),
                        ('out_channels', out_channels)):
        if value % groups:
            raise ValueError(
                f'{name}={value} is not divisible by groups={groups}')
    return kernel_h * kernel_w * (in_channels // groups) * (
        out_channels // groups) * groups


# --------------------------------------------------------------------------
# Cost of modules
# --------------------------------------------------------------------------
def _input_shape(module: nn.Module, input_shape: Sequence[int],
                 spatial_dims: int, in_channels: Optional[int]) -> Shape:
    """Validate ``(N, C, *spatial)`` against the module and return it."""
    shape = tuple(int(s) for s in input_shape)
    name = type(module).__name__
    if len(shape) != spatial_dims + 2:
        raise ValueError(
            f'{name} expects an input shape of {spatial_dims + 2} dims '
            f'(N, C, {spatial_dims} spatial), got {shape}')
    if in_channels is not None and shape[1] != in_channels:
        raise ValueError(f'{name} has in_channels={in_channels} but the '
                         f'input shape {shape} has {shape[1]} channels')
    return shape


@singledispatch
def conv_cost(module: nn.Module, input_shape: Sequence[int]) -> ConvCost:
    """Output shape, parameters and multiplications of ``module``.

    Args:
        module: a convolution, one of mmcat's primitives, or a sequence of
            them.
        input_shape: (N, C, H, W) (or (N, C, L) / (N, C, D, H, W) for 1-D
            and 3-D convolutions).

    Returns:
        The :class:`ConvCost` of one forward pass over the batch.

    Raises:
        TypeError: for a module type without a cost rule.
        ValueError: if ``input_shape`` does not fit the module.
    """
    known = sorted(cls.__name__ for cls in conv_cost.registry
                   if cls is not object)
    raise TypeError(f'conv_cost has no rule for {type(module).__name__}; '
                    f'rules exist for: {", ".join(known)}')


def _kernel_cost(module: nn.Module, n: int, out: Sequence[int],
                 positions: int) -> ConvCost:
    """Cost of a (transposed) convolution whose every weight meets one input
    value at each of ``positions`` places per sample."""
    weights = module.in_channels * (module.out_channels //
                                    module.groups) * prod(module.kernel_size)
    bias = module.out_channels if module.bias is not None else 0
    return ConvCost((n, module.out_channels, *out), weights + bias,
                    n * positions * weights)


@conv_cost.register(nn.Conv1d)
@conv_cost.register(nn.Conv2d)
@conv_cost.register(nn.Conv3d)
def _conv_nd_cost(module: nn.Conv2d, input_shape: Sequence[int]) -> ConvCost:
    dims = len(module.kernel_size)
    n, _, *size = _input_shape(module, input_shape, dims, module.in_channels)
    if module.padding == 'same':  # stride 1
        out = size
    else:
        padding = [0] * dims if module.padding == 'valid' else module.padding
        out = [
            conv_output_size(i, k, s, p, d)
            for i, k, s, p, d in zip(size, module.kernel_size, module.stride,
                                     padding, module.dilation)
        ]
    # gather form: each output value meets k taps of Cin/g channels
    return _kernel_cost(module, n, out, prod(out))


@conv_cost.register(nn.ConvTranspose1d)
@conv_cost.register(nn.ConvTranspose2d)
@conv_cost.register(nn.ConvTranspose3d)
def _conv_transpose_nd_cost(module: nn.ConvTranspose2d,
                            input_shape: Sequence[int]) -> ConvCost:
    dims = len(module.kernel_size)
    n, _, *size = _input_shape(module, input_shape, dims, module.in_channels)
    out = [
        conv_transpose_output_size(i, k, s, p, d, op)
        for i, k, s, p, d, op in zip(size, module.kernel_size, module.stride,
                                     module.padding, module.dilation,
                                     module.output_padding)
    ]
    # scatter form: each input value meets k taps of Cout/g filters
    return _kernel_cost(module, n, out, prod(size))


@conv_cost.register(nn.Sequential)
def _sequential_cost(module: nn.Sequential,
                     input_shape: Sequence[int]) -> ConvCost:
    total = ConvCost(tuple(int(s) for s in input_shape), 0, 0)
    for child in module:
        total = total + conv_cost(child, total.output_shape)
    return total


@conv_cost.register(nn.Identity)
def _identity_cost(module: nn.Identity,
                   input_shape: Sequence[int]) -> ConvCost:
    return ConvCost(tuple(int(s) for s in input_shape), 0, 0)


@conv_cost.register(nn.ChannelShuffle)
def _shuffle_cost(module: nn.ChannelShuffle,
                  input_shape: Sequence[int]) -> ConvCost:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) < 2 or shape[1] % module.groups:
        raise ValueError(f'ChannelShuffle(groups={module.groups}) needs the '
                         f'channels of {shape} divisible by {module.groups}')
    return ConvCost(shape, 0, 0)


@conv_cost.register(SpaceToDepth)
def _space_to_depth_cost(module: SpaceToDepth,
                         input_shape: Sequence[int]) -> ConvCost:
    n, c, h, w = _input_shape(module, input_shape, 2, None)
    s = module.factor
    if h % s or w % s:
        raise ValueError(f'SpaceToDepth({s}) needs H and W divisible by {s}, '
                         f'got {h}x{w}')
    return ConvCost((n, s * s * c, h // s, w // s), 0, 0)
