"""Convolution primitives: shapes, costs against FLOP counters, equivalences
with full convolutions, the slice embedding, registration for
mmcv/mmdet/mmseg, and argument errors."""
import importlib
import warnings
from typing import Dict, Tuple

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from mmcat.models.layers.conv_cost import (conv_cost,
                                           depthwise_separable_mults,
                                           standard_conv_mults)
from mmcat.models.layers.convs import (
    CONV_KINDS, DepthwiseSeparableConv2d, DilatedConv2d, FlattenedConv2d,
    GroupedConv2d, PointwiseConv2d, PointwiseGroupedConv2d,
    ShuffledGroupedConv2d, SliceConv2d, SpatialSeparableConv2d,
    conv_weight_to_slice_weight, slice_weight_to_conv_weight)

OURS = {
    'PointwiseConv2d': PointwiseConv2d,
    'DilatedConv2d': DilatedConv2d,
    'GroupedConv2d': GroupedConv2d,
    'PointwiseGroupedConv2d': PointwiseGroupedConv2d,
    'SpatialSeparableConv2d': SpatialSeparableConv2d,
    'DepthwiseSeparableConv2d': DepthwiseSeparableConv2d,
    'FlattenedConv2d': FlattenedConv2d,
    'ShuffledGroupedConv2d': ShuffledGroupedConv2d,
    'SliceConv2d': SliceConv2d,
}

# (input shape, nn.Conv2d keyword arguments): odd sizes, stride, padding,
# dilation, rectangular kernels
CASES = [
    ((2, 4, 11, 13),
     dict(out_channels=8, kernel_size=3, stride=1, padding=0, dilation=1,
          groups=2, bias=True)),
    ((1, 6, 15, 9),
     dict(out_channels=12, kernel_size=3, stride=2, padding=1, dilation=2,
          groups=3, bias=False)),
    ((1, 4, 9, 10),
     dict(out_channels=4, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2),
          dilation=1, groups=4, bias=True)),
]


def _pair(value) -> Tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _kind_kwargs(kind: str, in_channels: int, kwargs: Dict) -> Dict:
    """The case's arguments, adapted to what a kind allows."""
    kw = dict(kwargs, in_channels=in_channels)
    if kind in ('pointwise', 'pointwise_grouped'):
        kw.update(kernel_size=1, dilation=1)
    if kind == 'pointwise':
        kw.update(groups=1)
    if kind == 'slice':
        s = max(2, *_pair(kw['stride']))
        kw.update(kernel_size=s, stride=s, dilation=1, groups=1)
    return kw


def _build(kind: str, shape: Tuple[int, ...],
           kwargs: Dict) -> Tuple[nn.Module, Tuple[int, ...]]:
    """A module of ``kind`` (a key of CONV_KINDS) and its input shape."""
    kw = _kind_kwargs(kind, shape[1], kwargs)
    if kind == 'standard':
        return nn.Conv2d(**kw), shape
    if kind == '3d':  # a depth of 5, spatial arguments repeated along it
        for key in ('kernel_size', 'stride', 'padding', 'dilation'):
            pair = _pair(kw[key])
            kw[key] = (pair[0], *pair)
        return nn.Conv3d(**kw), (shape[0], shape[1], 5, *shape[2:])
    if kind == 'transposed':
        op = tuple(s - 1 for s in _pair(kw['stride']))
        return nn.ConvTranspose2d(**kw, output_padding=op), shape
    return OURS[CONV_KINDS[kind]](**kw), shape


ALL_KINDS = list(CONV_KINDS)


# ----------------------------------------------------------- shapes and costs
@pytest.mark.parametrize('name', list(OURS))
@pytest.mark.parametrize('shape,kwargs', CASES)
def test_same_output_shape_as_conv2d(name, shape, kwargs):
    kind = {v: k for k, v in CONV_KINDS.items()}[name]
    kw = _kind_kwargs(kind, shape[1], kwargs)
    x = torch.randn(shape)
    expected = nn.Conv2d(**kw)(x).shape
    module = OURS[name](**kw)
    assert module(x).shape == expected
    for attr in ('in_channels', 'out_channels', 'groups'):
        assert getattr(module, attr) == kw[attr]
    assert module.transposed is False


def _torch_flops(module: nn.Module, x: torch.Tensor) -> Tuple[int, torch.Size]:
    with FlopCounterMode(display=False) as counter:
        out = module(x)
    return counter.get_total_flops(), out.shape


def _mmengine_flops(module: nn.Module, x: torch.Tensor) -> int:
    from mmengine.analysis import FlopAnalyzer
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        analyzer = FlopAnalyzer(module, (x, ))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return analyzer.total()


@pytest.mark.parametrize('kind', ALL_KINDS)
@pytest.mark.parametrize('shape,kwargs', CASES)
def test_cost_matches_flop_counters(kind, shape, kwargs):
    module, in_shape = _build(kind, shape, kwargs)
    x = torch.randn(in_shape)
    cost = conv_cost(module, in_shape)
    flops, out_shape = _torch_flops(module, x)
    assert cost.output_shape == tuple(out_shape)
    assert cost.flops == flops  # torch: 2 FLOPs per multiply-add
    assert cost.mults == _mmengine_flops(module, x)  # mmengine: multiply-adds
    assert cost.params == sum(p.numel() for p in module.parameters())


def test_guide_example_costs_of_every_kind():
    shape = (1, 3, 7, 7)
    kwargs = dict(out_channels=128, kernel_size=3, bias=False)
    costs = {
        kind: conv_cost(*_build(kind, shape, kwargs))
        for kind in ('standard', 'depthwise_separable', 'spatial_separable',
                     'flattened')
    }
    # the closed forms, whose values test_conv_cost.py checks
    assert costs['standard'].mults == standard_conv_mults(7, 7, 3, 128, 3)
    assert costs['depthwise_separable'].mults == depthwise_separable_mults(
        7, 7, 3, 128, 3)
    # vertical 3x1: 128*3*3 taps at 5x7 positions, then 128 1x3 at 5x5
    assert costs['spatial_separable'].mults == 128 * 9 * 35 + 128 * 3 * 25
    # 1x1 at 7x7, depthwise 3x1 at 5x7, depthwise 1x3 at 5x5
    assert costs['flattened'].mults == 128 * 3 * 49 + 128 * 3 * 35 + 128 * 75
    assert {c.output_shape for c in costs.values()} == {(1, 128, 5, 5)}


# ----------------------------------------------------------- dilated, grouped
def test_dilated_conv_equals_conv_with_gaps_in_kernel():
    dilated = DilatedConv2d(2, 3, 3, padding=2, dilation=2)
    assert dilated.effective_kernel_size == (5, 5)
    full = nn.Conv2d(2, 3, 5, padding=2)
    with torch.no_grad():
        full.weight.zero_()
        full.weight[..., ::2, ::2] = dilated.weight  # l - 1 = 1 gap
        full.bias.copy_(dilated.bias)
    x = torch.randn(1, 2, 9, 8)
    torch.testing.assert_close(dilated(x), full(x))


@pytest.mark.parametrize('groups', [1, 2, 4])
def test_grouped_conv_weights_and_block_structure(groups):
    conv = GroupedConv2d(8, 16, 3, groups=groups, bias=False)
    assert conv.weight.numel() == 3 * 3 * 8 * 16 // groups
    x = torch.randn(1, 8, 5, 5, requires_grad=True)
    conv(x)[0, 0].sum().backward()  # output channel 0 is in group 0
    reached = x.grad[0].abs().flatten(1).sum(1) > 0
    assert reached.tolist() == [c < 8 // groups for c in range(8)]


@pytest.mark.parametrize('shuffle', [True, False])
def test_shuffle_lets_each_output_see_every_group(shuffle):
    # 4 groups of 4 channels: after the shuffle each group of the 1x1 conv
    # holds one channel from every group of the k x k conv
    m = ShuffledGroupedConv2d(16, 16, 3, groups=4)
    if not shuffle:
        m.shuffle = nn.Identity()
    x = torch.randn(1, 16, 6, 6, requires_grad=True)
    m(x)[0, 0].sum().backward()
    reached = x.grad[0].abs().flatten(1).sum(1) > 0
    assert reached.all().item() is shuffle
    assert reached[:4].all()


def test_shuffled_grouped_conv_equals_reference():
    m = ShuffledGroupedConv2d(6, 12, 3, stride=2, padding=1, groups=3)
    x = torch.randn(2, 6, 9, 7)
    y = F.conv2d(x, m.grouped.weight, stride=2, padding=1, groups=3)
    b, c, h, w = y.shape
    y = y.view(b, 3, c // 3, h, w).transpose(1, 2).reshape(b, c, h, w)
    y = F.conv2d(y, m.pointwise.weight, m.pointwise.bias, groups=3)
    torch.testing.assert_close(m(x), y)


# ----------------------------------------------------------- separable forms
def test_sobel_as_spatially_separable_conv():
    column = torch.tensor([1., 2., 1.])
    row = torch.tensor([1., 0., -1.])
    sobel = torch.outer(column, row)
    assert sobel.tolist() == [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
    sep = SpatialSeparableConv2d(1, 1, 3, stride=2, padding=1, bias=False)
    with torch.no_grad():
        sep.vertical.weight.copy_(column.view(1, 1, 3, 1))
        sep.horizontal.weight.copy_(row.view(1, 1, 1, 3))
    assert sum(p.numel() for p in sep.parameters()) == 6  # instead of 9
    x = torch.randn(1, 1, 11, 12)
    torch.testing.assert_close(
        sep(x), F.conv2d(x, sobel.view(1, 1, 3, 3), stride=2, padding=1))


def test_spatially_separable_equals_full_conv_multichannel():
    sep = SpatialSeparableConv2d(4, 6, (3, 5), (2, 1), (1, 2), (2, 1),
                                 groups=2)
    v = sep.vertical.weight[..., 0]  # (6, 2, 3)
    h = sep.horizontal.weight[:, 0, 0]  # (6, 5)
    full = torch.einsum('oci,oj->ocij', v, h)
    x = torch.randn(2, 4, 12, 11)
    expected = F.conv2d(x, full, sep.horizontal.bias, (2, 1), (1, 2), (2, 1),
                        groups=2)
    torch.testing.assert_close(sep(x), expected)


@pytest.mark.parametrize('groups', [1, 2])
def test_depthwise_separable_equals_factorised_full_conv(groups):
    sep = DepthwiseSeparableConv2d(4, 6, 3, 2, 1, 2, groups=groups)
    d = sep.depthwise.weight[:, 0]  # (4, 3, 3)
    p = sep.pointwise.weight[..., 0, 0]  # (6, 4 / groups)
    cin_g = 4 // groups
    # output o (group o // (6/groups)) uses depthwise channels of its group
    group_of = torch.arange(6) // (6 // groups)
    channels = group_of[:, None] * cin_g + torch.arange(cin_g)  # (6, cin_g)
    full = p[..., None, None] * d[channels]  # (6, cin_g, 3, 3)
    x = torch.randn(2, 4, 10, 9)
    expected = F.conv2d(x, full, sep.pointwise.bias, 2, 1, 2, groups)
    torch.testing.assert_close(sep(x), expected)


def test_flattened_equals_rank_one_full_conv():
    flat = FlattenedConv2d(3, 5, 3, stride=2, padding=1)
    lat = flat.lateral.weight[..., 0, 0]  # (5, 3)
    ver = flat.vertical.weight[:, 0, :, 0]  # (5, 3)
    hor = flat.horizontal.weight[:, 0, 0]  # (5, 3)
    full = torch.einsum('oc,oi,oj->ocij', lat, ver, hor)
    for o in range(5):  # each filter is rank 1 along channel, H, W
        assert torch.linalg.matrix_rank(full[o].reshape(3, 9)) == 1
    x = torch.randn(2, 3, 9, 10)
    expected = F.conv2d(x, full, flat.horizontal.bias, stride=2, padding=1)
    torch.testing.assert_close(flat(x), expected)


# ----------------------------------------------------------- slice
@pytest.mark.parametrize('size,padding', [((16, 16), 0), ((17, 23), 0),
                                          ((13, 10), 1)])
def test_slice_conv_equals_patchify_conv(size, padding):
    conv = nn.Conv2d(3, 8, 4, stride=4, padding=padding)
    sliced = SliceConv2d(3, 8, 4, stride=4, padding=padding)
    assert sliced.conv.weight.shape == (8, 48, 1, 1)
    with torch.no_grad():
        sliced.conv.weight.copy_(conv_weight_to_slice_weight(conv.weight))
        sliced.conv.bias.copy_(conv.bias)
    x = torch.randn(2, 3, *size)
    torch.testing.assert_close(sliced(x), conv(x))
    torch.testing.assert_close(SliceConv2d.from_conv(conv)(x), conv(x))
    torch.testing.assert_close(
        slice_weight_to_conv_weight(sliced.conv.weight, 4), conv.weight)


def test_slice_conv_as_patch_projection():
    """The CAT patch projection: 2x2 slice of 4C channels... to 2C."""
    conv = nn.Conv2d(5, 10, 2, stride=2, bias=False)
    sliced = SliceConv2d.from_conv(conv)
    assert sliced.conv.bias is None
    x = torch.randn(1, 5, 6, 8)
    torch.testing.assert_close(sliced(x), conv(x))


def test_slice_conv_rejects_kernel_not_equal_stride():
    with pytest.raises(ValueError, match='kernel_size must equal stride'):
        SliceConv2d(3, 8, 4, stride=2)
    with pytest.raises(ValueError, match='kernel_size must equal stride'):
        SliceConv2d(3, 8, 4)  # stride defaults to 1
    with pytest.raises(ValueError, match='dilation must be 1'):
        SliceConv2d(3, 8, 2, stride=2, dilation=2)
    with pytest.raises(ValueError, match='groups must be 1'):
        SliceConv2d(3, 9, 2, stride=2, groups=3)


# ----------------------------------------------------------- argument errors
@pytest.mark.parametrize('name', list(OURS))
def test_unknown_argument_names_the_allowed_ones(name):
    with pytest.raises(TypeError, match=r"'kernal_size'.*allowed: "
                       r'in_channels, out_channels, kernel_size, stride'):
        OURS[name](4, 4, kernel_size=2, stride=2, kernal_size=3)


@pytest.mark.parametrize('name', [n for n in OURS if n != 'SliceConv2d'])
def test_indivisible_groups_lists_allowed_groups(name):
    with pytest.raises(ValueError,
                       match=r'groups=4 must divide in_channels=6 and '
                       r'out_channels=12; allowed groups: \[1, 2, 3, 6\]'):
        OURS[name](6, 12, 1, groups=4)


def test_argument_errors_name_the_field():
    with pytest.raises(ValueError, match='PointwiseConv2d: kernel_size must '
                       'be 1'):
        PointwiseConv2d(4, 4, 3)
    with pytest.raises(ValueError, match='use PointwiseGroupedConv2d'):
        PointwiseConv2d(4, 4, 1, groups=2)
    with pytest.raises(ValueError, match='stride must be an int >= 1'):
        DepthwiseSeparableConv2d(4, 4, 3, stride=0)
    with pytest.raises(ValueError, match='padding must be an int >= 0'):
        FlattenedConv2d(4, 4, 3, padding='same')
    with pytest.raises(ValueError, match="padding must be an int, a pair, "
                       "'same' or 'valid'"):
        DilatedConv2d(4, 4, 3, padding='full')
    with pytest.raises(ValueError, match='in_channels must be an int >= 1'):
        GroupedConv2d(0, 4, 3)
    with pytest.raises(ValueError, match='bias must be True or False'):
        SpatialSeparableConv2d(4, 4, 3, bias='auto')
    with pytest.raises(ValueError, match='kernel_size must be an int >= 1 '
                       'or a pair'):
        ShuffledGroupedConv2d(4, 4, (3, 3, 3))
    with pytest.raises(ValueError, match='padding_mode must be one of'):
        DilatedConv2d(4, 4, 3, padding_mode='mirror')


# ----------------------------------------------------------- registration


def test_registered_names_do_not_shadow_mmcv():
    from mmengine.registry import MODELS
    for name, cls in OURS.items():
        assert MODELS.get(name) is cls
    # mmcv's own kinds stay mmcv's
    import mmcv.cnn  # noqa: F401  (registers mmcv's kinds)
    for name, base in [('Conv', nn.Conv2d), ('Conv2d', nn.Conv2d),
                       ('Conv3d', nn.Conv3d), ('deconv', nn.ConvTranspose2d),
                       ('ConvTranspose2d', nn.ConvTranspose2d)]:
        assert issubclass(MODELS.get(name), base)
        assert MODELS.get(name).__module__.split('.')[0] in ('torch', 'mmcv')
    for name in CONV_KINDS.values():
        assert MODELS.get(name) is not None


@pytest.mark.parametrize('name', list(OURS))
def test_build_conv_layer_and_conv_module(name):
    from mmcv.cnn import ConvModule, build_conv_layer
    kind = {v: k for k, v in CONV_KINDS.items()}[name]
    kw = _kind_kwargs(kind, 4, CASES[0][1])
    x = torch.randn(2, 4, 11, 13)
    expected = nn.Conv2d(**kw)(x).shape
    args = [kw.pop(k) for k in ('in_channels', 'out_channels', 'kernel_size')]
    layer = build_conv_layer(dict(type=name), *args, **kw)
    assert type(layer) is OURS[name]
    assert layer(x).shape == expected
    module = ConvModule(
        *args,
        stride=kw['stride'],
        padding=kw['padding'],
        dilation=kw['dilation'],
        groups=kw['groups'],
        conv_cfg=dict(type=name),
        norm_cfg=dict(type='BN'),
        act_cfg=dict(type='ReLU'))
    assert type(module.conv) is OURS[name]
    assert module(x).shape == expected


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_found_under_downstream_default_scopes(scope):
    from mmcv.cnn import build_conv_layer
    from mmengine.registry import DefaultScope
    registry = importlib.import_module(f'{scope}.registry').MODELS
    for name, cls in OURS.items():
        assert registry.get(name) is cls
        kind = {v: k for k, v in CONV_KINDS.items()}[name]
        shape, kwargs = CASES[1]
        kw = _kind_kwargs(kind, shape[1], kwargs)
        assert type(registry.build(dict(type=name, **kw))) is cls
        in_c, out_c, k = (kw.pop(k) for k in ('in_channels', 'out_channels',
                                               'kernel_size'))
        with DefaultScope.overwrite_default_scope(scope):
            assert type(build_conv_layer(dict(type=name), in_c, out_c, k,
                                         **kw)) is cls


def test_cat_backbone_calls():
    """The two calls the CAT backbone makes, with each kind that fits."""
    from mmcv.cnn import build_conv_layer
    x = torch.randn(1, 3, 32, 28)
    for cfg in (None, dict(type='SliceConv2d')):
        embed = build_conv_layer(cfg, 3, 16, kernel_size=4, stride=4,
                                 bias=True)
        assert embed(x).shape == (1, 16, 8, 7)
    y = torch.randn(1, 64, 8, 7)
    for name in ('PointwiseConv2d', 'PointwiseGroupedConv2d', 'GroupedConv2d',
                 'DepthwiseSeparableConv2d', 'FlattenedConv2d',
                 'SpatialSeparableConv2d', 'ShuffledGroupedConv2d',
                 'SliceConv2d', 'DilatedConv2d'):
        proj = build_conv_layer(dict(type=name), 64, 32, kernel_size=1,
                                bias=False)
        assert proj(y).shape == (1, 32, 8, 7)
