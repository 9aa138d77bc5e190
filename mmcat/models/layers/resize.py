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
