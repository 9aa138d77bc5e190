import pytest
import torch

from mmcat.models.layers.patch_partition import (channel_patch_partition,
                                                 channel_patch_reverse,
                                                 pad_to_multiple,
                                                 patch_partition,
                                                 patch_reverse)


def _map(b, h, w, c):
    return torch.arange(b * h * w * c, dtype=torch.float32).view(b, h, w, c)


def test_pad_to_multiple_pads_right_and_bottom_with_zeros():
    x = _map(1, 5, 9, 2) + 1
    y = pad_to_multiple(x, 7)
    assert y.shape == (1, 7, 14, 2)
    assert torch.equal(y[:, :5, :9], x)
    assert y[:, 5:].abs().sum() == 0 and y[:, :, 9:].abs().sum() == 0
    assert pad_to_multiple(y, 7) is y  # already a multiple: no copy


def test_patch_partition_follows_its_definition():
    n, x = 2, _map(2, 4, 6, 3)
    patches = patch_partition(x, n)
    assert patches.shape == (2 * 2 * 3, n * n, 3)
    # patch (b, ph, pw), pixel (i, j) -> x[b, ph*n+i, pw*n+j]
    b, ph, pw, i, j = 1, 1, 2, 1, 0
    assert torch.equal(patches[(b * 2 + ph) * 3 + pw, i * n + j],
                       x[b, ph * n + i, pw * n + j])
    assert torch.equal(patch_reverse(patches, n, (4, 6)), x)


@pytest.mark.parametrize('b,h,w,c', [(1, 14, 21, 5), (2, 21, 7, 3),
                                     (1, 7, 14, 4)])
def test_channel_patch_partition_follows_its_definition(b, h, w, c):
    n, x = 7, _map(b, h, w, c)
    tokens = channel_patch_partition(x, n)
    nh, nw = h // n, w // n
    assert tokens.shape == (b * c, nh * nw, n * n)
    expected = torch.empty_like(tokens)
    for bi in range(b):
        for ci in range(c):
            for ph in range(nh):
                for pw in range(nw):
                    patch = x[bi, ph * n:(ph + 1) * n, pw * n:(pw + 1) * n, ci]
                    expected[bi * c + ci, ph * nw + pw] = patch.reshape(-1)
    assert torch.equal(tokens, expected)
    assert torch.equal(channel_patch_reverse(tokens, n, (h, w), c), x)


def test_channel_patch_partition_gives_gradients_back_in_place():
    """Every map value lands in exactly one token: the gradient of the sum
    of the tokens is one everywhere."""
    x = torch.randn(2, 21, 28, 6, requires_grad=True)
    channel_patch_partition(x, 7).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
