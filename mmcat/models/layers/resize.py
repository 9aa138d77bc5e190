"""Bicubic resizing of a small table to a large channels-last map.

Bicubic interpolation is linear and separable: resizing a (C, h0, w0) table to
(H, W) is ``A_h @ table @ A_w^T`` for each channel, with ``A_h`` (H, h0) and
``A_w`` (W, w0) the 1-D interpolation matrices. Written as two matrix products
it yields the channels-last (H, W, C) map CAT adds to its embedding directly,
and on a CPU it runs faster than ``F.interpolate(mode='bicubic')``.
"""
from typing import Tuple

import torch
import torch.nn.functional as F


def bicubic_matrix(in_size: int, out_size: int, device: torch.device,
                   dtype: torch.dtype) -> torch.Tensor:
    """The (out_size, in_size) matrix of 1-D bicubic resizing.

    Row i holds the weights ``F.interpolate(mode='bicubic',
    align_corners=False)`` gives the input samples for output sample i
    (border samples clamped, as torch does): it is that function applied to
    the identity, along one axis only (the other axis keeps its size, where
    bicubic resizing is the identity).
    """
    eye = torch.eye(in_size, device=device, dtype=dtype)
    rows = F.interpolate(eye.view(in_size, 1, in_size, 1),
                         size=(out_size, 1), mode='bicubic',
                         align_corners=False)          # in, 1, out, 1
    return rows.view(in_size, out_size).t()


def bicubic_resize_nhwc(table: torch.Tensor,
                        size: Tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(table, size, mode='bicubic').permute(0, 2, 3, 1)``
    through two matrix products (equal up to float rounding; autograd works).

    Runs in ``table``'s dtype even under autocast, as ``F.interpolate`` does.

    Args:
        table: (1, C, h0, w0).
        size: (H, W).

    Returns:
        (1, H, W, C), contiguous.
    """
    if table.dim() != 4 or table.shape[0] != 1:
        raise ValueError(f'bicubic_resize_nhwc expects a (1, C, h0, w0) '
                         f'table, got shape {tuple(table.shape)}')
    device = table.device.type
    if torch.amp.is_autocast_available(device):
        with torch.autocast(device, enabled=False):
            return _resize_nhwc(table, size)
    return _resize_nhwc(table, size)


def _resize_nhwc(table: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    _, c, h0, w0 = table.shape
    h, w = size
    a_h = bicubic_matrix(h0, h, table.device, table.dtype)       # H, h0
    a_w = bicubic_matrix(w0, w, table.device, table.dtype)       # W, w0
    rows = a_h @ table[0].permute(1, 2, 0).reshape(h0, w0 * c)   # H, w0*C
    return (a_w @ rows.view(h, w0, c)).unsqueeze(0)              # 1, H, W, C


def bicubic_matrix_traceable(in_size: int, out_size,
                             dtype: torch.dtype) -> torch.Tensor:
    """:func:`bicubic_matrix` in closed form, for tracers and exporters.

    Builds the weights from ``torch.arange(out_size)`` with torch's bicubic
    kernel (cubic convolution, A = -0.75, half-pixel centres, border samples
    clamped), so ``out_size`` may be a traced or symbolic size and the
    exported graph resizes to the size of each input instead of the example's.

    Returns:
        (out_size, in_size).
    """
    a = -0.75
    i = torch.arange(out_size, dtype=torch.float32)
    src = (i + 0.5) * (in_size / out_size) - 0.5
    i0 = torch.floor(src)
    t = src - i0

    def near(d: torch.Tensor) -> torch.Tensor:      # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: torch.Tensor) -> torch.Tensor:       # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    cols = torch.arange(in_size)
    matrix = torch.zeros_like(src)[:, None] * cols[None, :]
    for k, weight in enumerate((far(t + 1), near(t), near(1 - t),
                                far(2 - t))):
        idx = (i0.long() - 1 + k).clamp(0, in_size - 1)
        matrix = matrix + (idx[:, None] == cols[None, :]).to(
            torch.float32) * weight[:, None]
    return matrix.to(dtype)


def bicubic_resize_nhwc_traceable(table: torch.Tensor,
                                  size: Tuple[int, int]) -> torch.Tensor:
    """:func:`bicubic_resize_nhwc` whose ``size`` may be traced or symbolic
    (exporters): (1, C, h0, w0) -> (1, H, W, C)."""
    _, c, h0, w0 = table.shape
    h, w = size
    a_h = bicubic_matrix_traceable(h0, h, table.dtype)           # H, h0
    a_w = bicubic_matrix_traceable(w0, w, table.dtype)           # W, w0
    rows = a_h @ table[0].permute(1, 2, 0).reshape(h0, w0 * c)   # H, w0*C
    return (a_w @ rows.reshape(h, w0, c)).unsqueeze(0)           # 1, H, W, C
