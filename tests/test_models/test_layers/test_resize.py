import pytest
import torch
import torch.nn.functional as F

from mmcat.models.layers.resize import bicubic_matrix, bicubic_resize_nhwc


@pytest.mark.parametrize('shape,size', [
    ((96, 56, 56), (200, 336)),   # CAT-S's table at 800x1344
    ((4, 56, 56), (28, 30)),      # shrinking
    ((2, 5, 9), (13, 4)),         # both ways at once
    ((3, 7, 5), (1, 2)),          # down to one row
])
def test_equals_torch_bicubic_with_gradients(shape, size):
    table = torch.randn(1, *shape, dtype=torch.float64, requires_grad=True)
    expected = F.interpolate(table, size=size, mode='bicubic',
                             align_corners=False).permute(0, 2, 3, 1)
    out = bicubic_resize_nhwc(table, size)
    assert out.shape == expected.shape and out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    grad = torch.randn_like(expected)
    torch.testing.assert_close(
        torch.autograd.grad(out, table, grad)[0],
        torch.autograd.grad(expected, table, grad)[0], rtol=0, atol=1e-12)


def test_matrix_rows_sum_to_one_and_keep_size_is_identity():
    m = bicubic_matrix(7, 20, torch.device('cpu'), torch.float64)
    assert m.shape == (20, 7)
    torch.testing.assert_close(m.sum(1), torch.ones(20, dtype=torch.float64))
    torch.testing.assert_close(
        bicubic_matrix(9, 9, torch.device('cpu'), torch.float64),
        torch.eye(9, dtype=torch.float64))


def test_stays_in_table_dtype_under_autocast():
    table = torch.randn(1, 8, 6, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = bicubic_resize_nhwc(table, (10, 12))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, bicubic_resize_nhwc(table, (10, 12)))


def test_rejects_a_batch_of_tables():
    with pytest.raises(ValueError, match=r'\(1, C, h0, w0\)'):
        bicubic_resize_nhwc(torch.randn(2, 3, 4, 4), (8, 8))


def test_runs_on_a_device_without_autocast():
    """Shape inference on the meta device (no autocast there)."""
    out = bicubic_resize_nhwc(torch.empty(1, 4, 6, 6, device='meta'), (9, 5))
    assert out.shape == (1, 9, 5, 4) and out.device.type == 'meta'
