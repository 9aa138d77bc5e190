"""Pure helpers that cut a channels-last map into N x N patches and back.

All functions take and return NHWC tensors; the zero padding they add on the
right/bottom takes part in attention, as in the CAT authors' code.
"""
from typing import Tuple

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad H and W on the right/bottom up to a multiple of ``multiple``.

    Args:
        x: (B, H, W, C).
        multiple: the size H and W are padded to a multiple of.

    Returns:
        (B, Hp, Wp, C); ``x`` itself when no padding is needed.
    """
    h, w = x.shape[1:3]
    pad_b = (-h) % multiple
    pad_r = (-w) % multiple
    if exporting() or pad_b or pad_r:
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    return x


def exporting() -> bool:
    """True under a tracer or exporter: sizes are symbolic there, so code
    pads unconditionally (a zero pad is the identity) instead of branching
    on the size of the example input."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def patch_partition(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Split a map into non-overlapping patches of pixel tokens (for IPSA).

    Args:
        x: (B, Hp, Wp, C) with Hp, Wp multiples of ``patch_size`` (N).

    Returns:
        (B * Hp/N * Wp/N, N*N, C): patches batch-major then row-major, pixels
        row-major inside a patch.
    """
    b, hp, wp, c = x.shape
    n = patch_size
    x = x.view(b, hp // n, n, wp // n, n, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, n * n, c)


def patch_reverse(patches: torch.Tensor, patch_size: int,
                  hw: Tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`patch_partition`.

    Args:
        patches: (B * Hp/N * Wp/N, N*N, C).
        hw: (Hp, Wp).

    Returns:
        (B, Hp, Wp, C).
    """
    hp, wp = hw
    n = patch_size
    c = patches.shape[-1]
    x = patches.view(-1, hp // n, wp // n, n, n, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, hp, wp, c)


def channel_patch_partition(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Split every channel into patches whose N*N values form one token (CPSA).

    Args:
        x: (B, Hp, Wp, C) with Hp, Wp multiples of ``patch_size`` (N).

    Returns:
        (B * C, Hp/N * Wp/N, N*N): one sequence per (image, channel); patches
        row-major, values row-major inside a patch.
    """
    b, hp, wp, c = x.shape
    n = patch_size
    nh, nw = hp // n, wp // n
    x = x.view(b, nh, n, nw, n, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b * c, nh * nw, n * n)


def channel_patch_reverse(tokens: torch.Tensor, patch_size: int,
                          hw: Tuple[int, int], channels: int) -> torch.Tensor:
    """Inverse of :func:`channel_patch_partition`.

    Args:
        tokens: (B * C, Hp/N * Wp/N, N*N).
        hw: (Hp, Wp).
        channels: C.

    Returns:
        (B, Hp, Wp, C).
    """
    hp, wp = hw
    n = patch_size
    x = tokens.view(-1, channels, hp // n, wp // n, n, n)
    x = x.permute(0, 2, 4, 3, 5, 1)
    return x.reshape(-1, hp, wp, channels)
