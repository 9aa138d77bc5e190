"""Convolution primitives of the convolution guide, as ``conv_cfg`` types.

Every class here is registered in mmengine's root ``MODELS`` registry, where
``mmcv.cnn.build_conv_layer`` and ``ConvModule`` look up ``conv_cfg['type']``
(also under mmdet's and mmseg's default scopes). Each 2-D primitive takes the
``nn.Conv2d`` signature ``(in_channels, out_channels, kernel_size, stride=1,
padding=0, dilation=1, groups=1, bias=True)``, declared and checked once in
:class:`~.conv_base.ConvKind`, maps (B, in_channels, H, W) to the same
(B, out_channels, H', W') as ``nn.Conv2d`` with those arguments, and exposes
the attributes ``ConvModule`` reads (``in_channels``, ``kernel_size``,
``stride``, ``padding``, ``dilation``, ``groups``, ``transposed`` ...).

Kinds already in torch/mmcv are not re-registered: standard 2-D (``'Conv2d'``
/ ``'Conv'``), 3-D (``'Conv3d'``) and transposed (``'deconv'``) convolution.

========================== ==================================================
type                       layers (stride, padding, dilation go to the
                           spatial steps; ``groups`` to the channel-mixing one)
========================== ==================================================
PointwiseConv2d            1x1 conv
DilatedConv2d              k x k conv with dilation (atrous)
GroupedConv2d              k x k conv with ``groups`` filter groups
PointwiseGroupedConv2d     1x1 conv with ``groups`` filter groups
SpatialSeparableConv2d     k x 1 conv (in -> out), then depthwise 1 x k
DepthwiseSeparableConv2d   depthwise k x k, then 1x1 conv (in -> out)
FlattenedConv2d            1x1 conv (in -> out), depthwise k x 1, then 1 x k
ShuffledGroupedConv2d      grouped k x k, channel shuffle, grouped 1x1
SliceConv2d                space-to-depth by s = kernel_size = stride, 1x1 conv
========================== ==================================================

In the composite kinds only the last layer has a bias, so that each equals a
full convolution whose kernel factorises accordingly (zero padding commutes
with bias-free steps). Their sub-layers keep torch's default initialisation
(``ConvModule`` only re-initialises a conv that has a ``weight`` of its own).
"""
from collections import OrderedDict
from typing import Any, Dict, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmcat.registry import MODELS
from .conv_base import Conv2dArgs, ConvKind, ConvStandIn, Size2, int_pair
from .conv_cost import ConvCost, conv_cost, conv_output_size
from .space_to_depth import space_to_depth

__all__ = [
    'PointwiseConv2d', 'DilatedConv2d', 'GroupedConv2d',
    'PointwiseGroupedConv2d', 'SpatialSeparableConv2d',
    'DepthwiseSeparableConv2d', 'FlattenedConv2d', 'ShuffledGroupedConv2d',
    'SliceConv2d', 'conv_weight_to_slice_weight',
    'slice_weight_to_conv_weight', 'CONV_KINDS'
]


# --------------------------------------------------------------------------
# Single-layer kinds: nn.Conv2d with checked arguments
# --------------------------------------------------------------------------
class _CheckedConv2d(ConvKind, nn.Conv2d):
    """``nn.Conv2d`` whose bad arguments raise errors naming the field."""

    extra_args = dict(padding_mode='zeros', device=None, dtype=None)
    string_padding = True

    def _build(self, args: Conv2dArgs) -> None:
        nn.Conv2d.__init__(self, args.in_channels, args.out_channels,
                           args.kernel_size, args.stride, args.padding,
                           args.dilation, args.groups, args.bias,
                           **args.extra)


def _require_1x1(owner: str, args: Conv2dArgs) -> None:
    if args.kernel_size != (1, 1):
        raise ValueError(f'{owner}: kernel_size must be 1 (a 1x1 conv), got '
                         f'{args.kernel_size}; use Conv2d for k x k')


@MODELS.register_module()
class PointwiseConv2d(_CheckedConv2d):
    """1x1 (pointwise) convolution: a per-pixel linear map of channels.

    ``(B, Cin, H, W) -> (B, Cout, H', W')``; ``kernel_size`` must be 1 and
    ``groups`` 1 (see :class:`PointwiseGroupedConv2d`).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: Size2 = 1, *args: Any, **kwargs: Any) -> None:
        """The ``nn.Conv2d`` arguments, ``kernel_size`` defaulting to 1."""
        super().__init__(in_channels, out_channels, kernel_size, *args,
                         **kwargs)

    def _check_kind(self, args: Conv2dArgs) -> None:
        _require_1x1(type(self).__name__, args)
        if args.groups != 1:
            raise ValueError(f'PointwiseConv2d: groups must be 1, got '
                             f'{args.groups}; use PointwiseGroupedConv2d')


@MODELS.register_module()
class PointwiseGroupedConv2d(PointwiseConv2d):
    """Pointwise grouped convolution (ShuffleNet): a 1x1 conv with
    ``groups`` filter groups, ``Cin * Cout / groups`` weights.

    ``(B, Cin, H, W) -> (B, Cout, H', W')``; ``kernel_size`` must be 1.
    """

    def _check_kind(self, args: Conv2dArgs) -> None:
        _require_1x1(type(self).__name__, args)

@MODELS.register_module()
class DilatedConv2d(_CheckedConv2d):
    """Dilated (atrous) convolution: ``dilation - 1`` gaps between taps.

    A k x k kernel with dilation l spans ``l(k-1)+1`` pixels with k*k weights
    (l = 1 is the standard convolution). Stacked 3x3 layers with rates 1, 2,
    4 see 3x3, 7x7, 15x15 (:func:`~.conv_cost.receptive_field`).
    ``(B, Cin, H, W) -> (B, Cout, H', W')`` as ``nn.Conv2d``.
    """

    @property
    def effective_kernel_size(self) -> Tuple[int, int]:
        """Span of the dilated kernel, (height, width)."""
        return tuple(d * (k - 1) + 1
                     for k, d in zip(self.kernel_size, self.dilation))


@MODELS.register_module()
class GroupedConv2d(_CheckedConv2d):
    """Grouped convolution (AlexNet, ResNeXt): ``groups`` filter groups,
    each seeing ``Cin / groups`` channels; weights ``k*k*Cin*Cout/groups``
    (groups = 1 is the standard convolution).

    ``(B, Cin, H, W) -> (B, Cout, H', W')`` as ``nn.Conv2d``.
    """


# --------------------------------------------------------------------------
# Composite kinds: a sequence of torch layers standing in for one nn.Conv2d
# --------------------------------------------------------------------------
class _CompositeConv2d(ConvStandIn, nn.Sequential):
    """Base of the composite kinds: ``nn.Sequential`` (so its cost is the sum
    of its parts) carrying the ``nn.Conv2d`` attributes of what it replaces.
    """

    def _build(self, args: Conv2dArgs) -> None:
        nn.Sequential.__init__(self, self._layers(args))
        self._store(args)

    def _layers(self, a: Conv2dArgs) -> 'OrderedDict[str, nn.Module]':
        """The named torch layers, input side first."""
        raise NotImplementedError


def _along_h(in_channels: int, out_channels: int, a: Conv2dArgs,
             groups: int) -> nn.Conv2d:
    """(kh, 1) conv with the stride, padding and dilation along H; no bias."""
    (kh, _), (sh, _) = a.kernel_size, a.stride
    (ph, _), (dh, _) = a.padding, a.dilation
    return nn.Conv2d(in_channels, out_channels, (kh, 1), (sh, 1), (ph, 0),
                     (dh, 1), groups=groups, bias=False)


def _along_w(channels: int, a: Conv2dArgs) -> nn.Conv2d:
    """Depthwise (1, kw) conv with the stride, padding and dilation along W
    and the bias of ``a``."""
    (_, kw), (_, sw) = a.kernel_size, a.stride
    (_, pw), (_, dw) = a.padding, a.dilation
    return nn.Conv2d(channels, channels, (1, kw), (1, sw), (0, pw), (1, dw),
                     groups=channels, bias=a.bias)


@MODELS.register_module()
class SpatialSeparableConv2d(_CompositeConv2d):
    """Spatially separable convolution: k x 1, then 1 x k.

    ``vertical``: (kh, 1) conv Cin -> Cout (stride, padding and dilation along
    H; ``groups``; no bias). ``horizontal``: depthwise (1, kw) conv on Cout
    (along W; bias). Equals a full conv whose kernel is
    ``W[o, c, i, j] = vertical[o, c, i] * horizontal[o, j]`` (e.g. Sobel =
    [1, 2, 1]^T x [1, 0, -1]).

    Shapes: (B, Cin, H, W) -> (B, Cout, H', W') as ``nn.Conv2d``.
    """

    def _layers(self, a: Conv2dArgs) -> 'OrderedDict[str, nn.Module]':
        cout = a.out_channels
        return OrderedDict(
            vertical=_along_h(a.in_channels, cout, a, a.groups),
            horizontal=_along_w(cout, a))


@MODELS.register_module()
class DepthwiseSeparableConv2d(_CompositeConv2d):
    """Depthwise separable convolution (MobileNet, Xception).

    ``depthwise``: k x k conv with groups=Cin (stride, padding, dilation; no
    bias). ``pointwise``: 1x1 conv Cin -> Cout (``groups``; bias). Equals a
    full conv with ``W[o, c, i, j] = pointwise[o, c] * depthwise[c, i, j]``;
    costs ``1/Cout + 1/k^2`` of its multiplications.

    Shapes: (B, Cin, H, W) -> (B, Cout, H', W') as ``nn.Conv2d``.
    """

    def _layers(self, a: Conv2dArgs) -> 'OrderedDict[str, nn.Module]':
        cin = a.in_channels
        return OrderedDict(
            depthwise=nn.Conv2d(
                cin, cin, a.kernel_size, a.stride, a.padding, a.dilation,
                groups=cin, bias=False),
            pointwise=nn.Conv2d(
                cin, a.out_channels, 1, groups=a.groups, bias=a.bias))


@MODELS.register_module()
class FlattenedConv2d(_CompositeConv2d):
    """Flattened convolution (Jin et al. 2014): a filter decomposed into 1-D
    filters along channels, height and width.

    ``lateral``: 1x1 conv Cin -> Cout (``groups``; no bias). ``vertical``:
    depthwise (kh, 1) conv (stride, padding, dilation along H; no bias).
    ``horizontal``: depthwise (1, kw) conv (along W; bias). Equals a full conv
    with the rank-1 filters ``W[o, c, i, j] = lateral[o, c] * vertical[o, i]
    * horizontal[o, j]``.

    Shapes: (B, Cin, H, W) -> (B, Cout, H', W') as ``nn.Conv2d``.
    """

    def _layers(self, a: Conv2dArgs) -> 'OrderedDict[str, nn.Module]':
        cout = a.out_channels
        return OrderedDict(
            lateral=nn.Conv2d(
                a.in_channels, cout, 1, groups=a.groups, bias=False),
            vertical=_along_h(cout, cout, a, cout),
            horizontal=_along_w(cout, a))


@MODELS.register_module()
class ShuffledGroupedConv2d(_CompositeConv2d):
    """Shuffled grouped convolution (ShuffleNet): grouped conv, channel
    shuffle, grouped conv.

    ``grouped``: k x k conv Cin -> Cout with ``groups`` (stride, padding,
    dilation; no bias). ``shuffle``: ``nn.ChannelShuffle(groups)``, so each
    group of the next layer sees channels of every group. ``pointwise``: 1x1
    conv Cout -> Cout with ``groups`` (bias). With ``groups=1`` it is a
    k x k conv followed by a 1x1 conv.

    Shapes: (B, Cin, H, W) -> (B, Cout, H', W') as ``nn.Conv2d``.
    """

    def _layers(self, a: Conv2dArgs) -> 'OrderedDict[str, nn.Module]':
        cout = a.out_channels
        return OrderedDict(
            grouped=nn.Conv2d(
                a.in_channels, cout, a.kernel_size, a.stride, a.padding,
                a.dilation, groups=a.groups, bias=False),
            shuffle=nn.ChannelShuffle(a.groups),
            pointwise=nn.Conv2d(cout, cout, 1, groups=a.groups, bias=a.bias))


# --------------------------------------------------------------------------
# Slice: space-to-depth, then 1x1 (the CAT ablation's patch embedding)
# --------------------------------------------------------------------------
def conv_weight_to_slice_weight(weight: torch.Tensor) -> torch.Tensor:
    """Weight of a k x k stride-k conv as the equivalent :class:`SliceConv2d`
    1x1 weight.

    Args:
        weight: (Cout, Cin, k, k).

    Returns:
        (Cout, k*k*Cin, 1, 1): input channel ``(dx * k + dy) * Cin + c`` holds
        ``weight[:, c, dy, dx]``, matching :func:`space_to_depth`'s order.
    """
    if weight.dim() != 4 or weight.shape[2] != weight.shape[3]:
        raise ValueError('weight must be (Cout, Cin, k, k) with a square '
                         f'kernel, got {tuple(weight.shape)}')
    cout, cin, k, _ = weight.shape
    return weight.permute(0, 3, 2, 1).reshape(cout, k * k * cin, 1, 1)


def slice_weight_to_conv_weight(weight: torch.Tensor,
                                factor: int) -> torch.Tensor:
    """Inverse of :func:`conv_weight_to_slice_weight`.

    Args:
        weight: (Cout, s*s*Cin, 1, 1).
        factor: s.

    Returns:
        (Cout, Cin, s, s).
    """
    s = factor
    if weight.dim() != 4 or weight.shape[2:] != (1, 1) or weight.shape[1] % (
            s * s):
        raise ValueError(f'weight must be (Cout, {s}*{s}*Cin, 1, 1), got '
                         f'{tuple(weight.shape)}')
    cout, c = weight.shape[:2]
    return weight.reshape(cout, s, s, c // (s * s)).permute(0, 3, 2, 1)


@MODELS.register_module()
class SliceConv2d(ConvStandIn, nn.Module):
    """Space-to-depth ("slice") by s, then a 1x1 conv: the CAT paper's
    ablation of the patch embedding, equal to a k x k stride-k conv.

    ``kernel_size`` must equal ``stride`` (= s, square); ``dilation`` and
    ``groups`` must be 1. ``padding`` zero-pads first and, as ``nn.Conv2d``
    does, rows and columns beyond the last whole s x s block are dropped.

    Shapes: (B, Cin, H, W) -> (B, Cout, H', W') as ``nn.Conv2d``; the 1x1
    ``conv`` has ``s*s*Cin`` inputs (use :func:`conv_weight_to_slice_weight`
    or :meth:`from_conv` to load a standard conv's weight).
    """

    def _check_args(self, call: Dict[str, Any],
                    extra: Dict[str, Any]) -> Conv2dArgs:
        """Check what makes a slice first: ``kernel_size == stride``,
        ``dilation == 1`` and ``groups == 1``."""
        self._reject_unknown(extra)
        owner = type(self).__name__
        k = int_pair(owner, 'kernel_size', call['kernel_size'], 1)
        s = int_pair(owner, 'stride', call['stride'], 1)
        if k[0] != k[1] or k != s:
            raise ValueError(
                f'{owner}: kernel_size must equal stride and be square (a '
                f'space-to-depth by s is an s x s stride-s conv), got '
                f'kernel_size={call["kernel_size"]!r}, '
                f'stride={call["stride"]!r}; e.g. kernel_size=4, stride=4')
        dilation = call['dilation']
        if int_pair(owner, 'dilation', dilation, 1) != (1, 1):
            raise ValueError(f'{owner}: dilation must be 1, got {dilation!r}')
        if call['groups'] != 1:
            raise ValueError(
                f'{owner}: groups must be 1, got {call["groups"]!r}')
        return super()._check_args(call, extra)

    def _build(self, args: Conv2dArgs) -> None:
        nn.Module.__init__(self)
        self._store(args)
        self.factor = args.kernel_size[0]
        self.conv = nn.Conv2d(
            self.factor**2 * args.in_channels, args.out_channels, 1,
            bias=args.bias)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> 'SliceConv2d':
        """The SliceConv2d that computes the same as a k x k stride-k conv."""
        module = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None)
        with torch.no_grad():
            module.conv.weight.copy_(conv_weight_to_slice_weight(conv.weight))
            if conv.bias is not None:
                module.conv.bias.copy_(conv.bias)
        return module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, H, W) -> (B, Cout, floor((H + 2p) / s), ...)."""
        ph, pw = self.padding
        if ph or pw:
            x = F.pad(x, (pw, pw, ph, ph))
        s = self.factor
        h, w = x.shape[-2:]
        if h < s or w < s:
            raise ValueError(f'SliceConv2d: padded input {h}x{w} is smaller '
                             f'than the {s}x{s} slice')
        x = x[..., :h - h % s, :w - w % s]
        return self.conv(space_to_depth(x, s))

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}')


@conv_cost.register(SliceConv2d)
def _slice_cost(module: SliceConv2d, input_shape: Sequence[int]) -> ConvCost:
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 4 or shape[1] != module.in_channels:
        raise ValueError(f'SliceConv2d has in_channels={module.in_channels}; '
                         f'expected an input shape (N, {module.in_channels}, '
                         f'H, W), got {shape}')
    n, c, h, w = shape
    s = module.factor
    out_h, out_w = (conv_output_size(size, s, s, p)
                    for size, p in zip((h, w), module.padding))
    sliced = ConvCost((n, s * s * c, out_h, out_w), 0, 0)
    return sliced + conv_cost(module.conv, sliced.output_shape)


#: ``conv_cfg`` type names of every convolution kind of the guide, in the
#: guide's order: mmcv's own for the standard, 3-D and transposed kinds.
CONV_KINDS: Dict[str, str] = OrderedDict([
    ('standard', 'Conv2d'),
    ('3d', 'Conv3d'),
    ('pointwise', 'PointwiseConv2d'),
    ('transposed', 'deconv'),
    ('dilated', 'DilatedConv2d'),
    ('spatial_separable', 'SpatialSeparableConv2d'),
    ('depthwise_separable', 'DepthwiseSeparableConv2d'),
    ('flattened', 'FlattenedConv2d'),
    ('grouped', 'GroupedConv2d'),
    ('shuffled_grouped', 'ShuffledGroupedConv2d'),
    ('pointwise_grouped', 'PointwiseGroupedConv2d'),
    ('slice', 'SliceConv2d'),
])
