"""The convolution guide's arithmetic: closed forms and module costs."""
from fractions import Fraction

import pytest
import torch
import torch.nn as nn

from mmcat.models.layers.conv_cost import (
    ConvCost, conv_cost, conv_output_size, conv_transpose_output_size,
    depthwise_separable_mults, depthwise_separable_ratio,
    effective_kernel_size, grouped_conv_weights, receptive_field,
    spatial_separable_mults, spatial_separable_ratio, standard_conv_mults)
from mmcat.models.layers.space_to_depth import SpaceToDepth


# ----------------------------------------------------------- worked numbers
def test_guide_depthwise_separable_example():
    """7x7x3 -> 5x5x128 with 3x3 kernels: the closed forms and the costs of
    the modules give the guide's counts."""
    standard = nn.Conv2d(3, 128, 3, bias=False)
    depthwise = nn.Conv2d(3, 3, 3, groups=3, bias=False)
    pointwise = nn.Conv2d(3, 128, 1, bias=False)
    assert conv_cost(standard, (1, 3, 7, 7)) == ConvCost(
        (1, 128, 5, 5), 3456, standard_conv_mults(7, 7, 3, 128, 3)) == \
        ConvCost((1, 128, 5, 5), 3456, 86_400)
    dw = conv_cost(depthwise, (1, 3, 7, 7))
    pw = conv_cost(pointwise, dw.output_shape)
    assert (dw.mults, pw.mults) == (675, 9_600)
    both = conv_cost(nn.Sequential(depthwise, pointwise), (1, 3, 7, 7))
    assert both == dw + pw == ConvCost((1, 128, 5, 5), 27 + 384, 10_275)
    assert depthwise_separable_mults(7, 7, 3, 128, 3) == 10_275
    ratio = Fraction(10_275, 86_400)
    assert ratio == depthwise_separable_ratio(128, 3)
    assert round(float(ratio), 2) == 0.12  # "about 12%"


def test_guide_spatial_separable_example():
    assert standard_conv_mults(5, 5, 1, 1, 3) == 81
    assert spatial_separable_mults(5, 3) == 45 + 27 == 72
    vertical = nn.Conv2d(1, 1, (3, 1), bias=False)
    horizontal = nn.Conv2d(1, 1, (1, 3), bias=False)
    first = conv_cost(vertical, (1, 1, 5, 5))
    assert first.output_shape == (1, 1, 3, 5)  # "a 3x5 matrix"
    assert first.mults == 45
    assert conv_cost(horizontal, first.output_shape).mults == 27
    assert conv_cost(nn.Conv2d(1, 1, 3), (1, 1, 5, 5)).mults == 81


@pytest.mark.parametrize('size', [5, 6, 17, 100])
def test_spatial_separable_matches_guide_formula_for_3x3(size):
    # the guide's (2N-2)(N-2)m is written for m = 3
    assert spatial_separable_mults(size, 3) == (2 * size - 2) * (size - 2) * 3
    assert standard_conv_mults(size, size, 1, 1, 3) == (size - 2)**2 * 9


@pytest.mark.parametrize('m', [3, 5, 7])
def test_spatial_separable_ratio_tends_to_two_over_m(m):
    ratios = [spatial_separable_ratio(n, m) for n in (10, 100, 10_000)]
    assert ratios[0] > ratios[1] > ratios[2] > Fraction(2, m)
    assert abs(float(spatial_separable_ratio(10**7, m)) - 2 / m) < 1e-6


@pytest.mark.parametrize('h', [3, 5])
@pytest.mark.parametrize('nc', [8, 128, 4096])
def test_depthwise_separable_ratio_is_exact(h, nc):
    # 1/Nc + 1/h^2 for any H, W, D; tends to 1/h^2 when Nc >> h
    for height, width, d in [(7, 7, 3), (20, 13, 16)]:
        ratio = Fraction(
            depthwise_separable_mults(height, width, d, nc, h),
            standard_conv_mults(height, width, d, nc, h))
        assert ratio == depthwise_separable_ratio(nc, h)
    assert abs(float(depthwise_separable_ratio(10**9, h)) - 1 / h**2) < 1e-8


@pytest.mark.parametrize('groups', [1, 2, 4, 8])
def test_grouped_weights_divided_by_groups(groups):
    weights = grouped_conv_weights(3, 3, 64, 128, groups)
    assert weights == 3 * 3 * 64 * 128 // groups
    conv = nn.Conv2d(64, 128, 3, groups=groups, bias=False)
    assert conv.weight.numel() == weights
    assert conv_cost(conv, (1, 64, 9, 9)).params == weights
    assert conv_cost(conv, (1, 64, 9, 9)).mults == 128 * 49 * 9 * 64 // groups


def test_grouped_weights_rejects_indivisible_channels():
    with pytest.raises(ValueError, match='in_channels=6 .*groups=4'):
        grouped_conv_weights(3, 3, 6, 8, 4)


# ----------------------------------------------------------- sizes
def test_transposed_output_sizes_of_the_guide():
    # 2x2 input, 3x3 kernel, (direct view) 2-wide zero border -> 4x4
    assert conv_transpose_output_size(2, 3, stride=1, padding=0) == 4
    # one zero inserted between inputs as well -> 5x5
    assert conv_transpose_output_size(2, 3, stride=2, padding=0) == 5
    for stride, expected in [(1, 4), (2, 5)]:
        m = nn.ConvTranspose2d(1, 1, 3, stride=stride)
        assert m(torch.zeros(1, 1, 2, 2)).shape[-2:] == (expected, expected)
        assert conv_cost(m, (1, 1, 2, 2)).output_shape == (1, 1, expected,
                                                           expected)


@pytest.mark.parametrize('size,k,s,p,d', [(7, 3, 1, 0, 1), (11, 3, 2, 1, 1),
                                          (10, 3, 3, 2, 2), (5, 5, 1, 2, 1),
                                          (224, 4, 4, 0, 1)])
def test_conv_output_size_matches_torch(size, k, s, p, d):
    x = torch.zeros(1, 1, size)
    out = nn.Conv1d(1, 1, k, s, p, d)(x).shape[-1]
    assert conv_output_size(size, k, s, p, d) == out
    # the transposed conv maps the output size back (up to stride - 1)
    back = conv_transpose_output_size(out, k, s, p, d)
    assert size - (s - 1) <= back <= size


def test_conv_output_size_rejects_small_input():
    with pytest.raises(ValueError, match='kernel span 5'):
        conv_output_size(4, 3, dilation=2)


def test_dilated_receptive_fields_3_7_15():
    assert [effective_kernel_size(3, d) for d in (1, 2, 4)] == [3, 5, 9]
    fields = [receptive_field([3] * n, [1, 2, 4][:n]) for n in (1, 2, 3)]
    assert fields == [3, 7, 15]
    # parameter count does not grow with the rate
    params = {
        nn.Conv2d(1, 1, 3, dilation=d).weight.numel()
        for d in (1, 2, 4)
    }
    assert params == {9}


def test_receptive_field_with_strides():
    # 3x3 s2, 3x3 s2, 3x3: 3 + 2*2 + 2*4 = 15
    assert receptive_field([3, 3, 3], strides=[2, 2, 1]) == 15
    with pytest.raises(ValueError, match='one entry per layer'):
        receptive_field([3, 3], dilations=[1])


def _empirical_receptive_field(module: nn.Module, size: int = 41) -> int:
    """Width of the input region that reaches the central output pixel."""
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    y = module(x)
    c = y.shape[-1] // 2
    y[0, 0, c, c].backward()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    width = int(cols.max() - cols.min()) + 1
    assert width == int(rows.max() - rows.min()) + 1
    return width


def test_dilated_receptive_fields_from_gradients():
    layers = []
    for n, rate in enumerate([1, 2, 4], start=1):
        conv = nn.Conv2d(1, 1, 3, padding=rate, dilation=rate, bias=False)
        nn.init.ones_(conv.weight)  # positive: no cancellation
        layers.append(conv)
        measured = _empirical_receptive_field(nn.Sequential(*layers))
        assert measured == receptive_field([3] * n, [1, 2, 4][:n])
    assert measured == 15


# ----------------------------------------------------------- module costs
def test_conv_cost_counts_bias_in_params_not_in_mults():
    with_bias = conv_cost(nn.Conv2d(4, 6, 3), (2, 4, 8, 8))
    without = conv_cost(nn.Conv2d(4, 6, 3, bias=False), (2, 4, 8, 8))
    assert with_bias.params == without.params + 6
    assert with_bias.mults == without.mults == 2 * 6 * 36 * 4 * 9
    assert with_bias.flops == 2 * with_bias.mults


def test_conv_cost_string_padding():
    same = nn.Conv2d(3, 5, 3, padding='same', dilation=2)
    valid = nn.Conv2d(3, 5, 3, padding='valid')
    assert conv_cost(same, (1, 3, 9, 10)).output_shape == (1, 5, 9, 10)
    assert conv_cost(valid, (1, 3, 9, 10)).output_shape == (1, 5, 7, 8)


def test_conv_cost_3d_and_transposed():
    conv3d = nn.Conv3d(1, 4, 3, stride=(1, 2, 2), padding=1)
    x = torch.zeros(2, 1, 5, 9, 8)
    cost = conv_cost(conv3d, x.shape)
    assert cost.output_shape == tuple(conv3d(x).shape) == (2, 4, 5, 5, 4)
    assert cost.mults == 2 * 4 * (5 * 5 * 4) * 27
    deconv = nn.ConvTranspose2d(6, 4, 3, stride=2, groups=2)
    cost = conv_cost(deconv, (1, 6, 3, 4))
    # scatter form: every input value times k*k taps of Cout/g filters
    assert cost.mults == 6 * 12 * 9 * 2
    assert cost.params == 6 * 2 * 9 + 4


def test_conv_cost_of_zero_cost_layers():
    shape = (2, 8, 6, 4)
    assert conv_cost(nn.ChannelShuffle(4), shape) == ConvCost(shape, 0, 0)
    assert conv_cost(nn.Identity(), shape) == ConvCost(shape, 0, 0)
    assert conv_cost(SpaceToDepth(2), shape) == ConvCost((2, 32, 3, 2), 0, 0)
    with pytest.raises(ValueError, match='divisible by 3'):
        conv_cost(nn.ChannelShuffle(3), shape)


def test_conv_cost_errors():
    with pytest.raises(TypeError, match='no rule for ReLU; rules exist for'):
        conv_cost(nn.ReLU(), (1, 3, 4, 4))
    with pytest.raises(ValueError, match='in_channels=3 .* 4 channels'):
        conv_cost(nn.Conv2d(3, 3, 1), (1, 4, 4, 4))
    with pytest.raises(ValueError, match='4 dims'):
        conv_cost(nn.Conv2d(3, 3, 1), (3, 4, 4))
