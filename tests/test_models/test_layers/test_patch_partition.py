import pytest
import torch

from mmcat.models.layers.patch_partition import (channel_patch_partition,
                                                 channel_patch_reverse, crop,
                                                 pad_to_multiple,
                                                 patch_partition,
                                                 patch_reverse, round_up)


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


class _PadPartitionCrop(torch.nn.Module):
    """Both partitions there and back, as IPSA and CPSA do around attention."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h, w, c = x.shape
        y = pad_to_multiple(x, self.n)
        hw = y.shape[1:3]
        a = patch_reverse(patch_partition(y, self.n) * 2, self.n, hw)
        b = channel_patch_reverse(channel_patch_partition(y, self.n) + 1,
                                  self.n, hw, c)
        return crop(a, h, w) + crop(b, h, w)


def test_export_forms_equal_the_plain_ones_at_every_size():
    """Under torch.export, round_up, crop and merge_dims take their export
    forms; the program must move every value where eager does, at sizes
    other than the example's (maps of two or more patches per side)."""
    n, module = 4, _PadPartitionCrop(4)
    h = torch.export.Dim('h', min=n + 1, max=512)
    w = torch.export.Dim('w', min=n + 1, max=512)
    program = torch.export.export(
        module, (_map(1, 9, 14, 3), ),
        dynamic_shapes=({1: h, 2: w}, )).module()
    for size in [(5, 5), (9, 14), (13, 6), (16, 16), (33, 17)]:
        x = _map(1, *size, 3)
        assert torch.equal(program(x), module(x)), size


def test_round_up():
    sizes = (1, 6, 7, 8, 14, 15)
    assert [round_up(s, 7) for s in sizes] == [7, 7, 7, 14, 14, 21]
