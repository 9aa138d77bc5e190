"""Pure helpers that cut a channels-last map into N x N patches and back.

All functions take and return NHWC tensors; the zero padding they add on the
right/bottom takes part in attention, as in the CAT authors' code.

This module is also the one place where shapes take an exporter's form:
tracers pad unconditionally (:func:`exporting`), and under ``torch.export``
:func:`crop` gathers and :func:`merge_dims` copies with explicit strides, so
that one program runs at every input size.
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
    pad_b = round_up(h, multiple) - h
    pad_r = round_up(w, multiple) - w
    if exporting() or pad_b or pad_r:
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    return x


def round_up(size: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` >= ``size``.

    Written as a floor division times ``multiple`` (not ``size + (-size) %
    multiple``) so that a symbolic size stays a form ``torch.export``'s shape
    solver simplifies: the padded size divides by ``multiple`` exactly."""
    return (size + multiple - 1) // multiple * multiple


def crop(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``x[:, :h, :w]`` of a padded (B, Hp, Wp, C) map, Hp >= h, Wp >= w.

    Under ``torch.export`` the rows and columns are gathered instead: its
    shape solver cannot prove Hp >= h for symbolic sizes, and a slice would
    leave the size ``min(h, Hp)`` that then fails to match the unpadded
    input."""
    if torch.compiler.is_exporting():
        rows = torch.arange(h, device=x.device)
        cols = torch.arange(w, device=x.device)
        return x.index_select(1, rows).index_select(2, cols)
    return x[:, :h, :w]


def exporting() -> bool:
    """True under a tracer or exporter: sizes are symbolic there, so code
    pads unconditionally (a zero pad is the identity) instead of branching
    on the size of the example input."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def merge_dims(x: torch.Tensor, shape: Tuple[int, ...]) -> torch.Tensor:
    """``x.reshape(shape)`` for a permuted ``x`` whose consecutive dimensions
    ``shape`` merges (every size given, no -1).

    Under ``torch.export`` the contiguous copy is given the merged shape with
    ``as_strided``: reshape's view-or-copy choice makes the shape solver
    decide facts it cannot prove for symbolic sizes (``nh % (N * nh)``, a
    size of 1), which fails the export."""
    if not torch.compiler.is_exporting():
        return x.reshape(shape)
    strides, step = [], 1
    for size in reversed(shape):
        strides.insert(0, step)
        step = step * size
    return x.clone(memory_format=torch.contiguous_format).as_strided(
        shape, strides)


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
    nh, nw = hp // n, wp // n
    x = x.view(b, nh, n, nw, n, c).permute(0, 1, 3, 2, 4, 5)
    return merge_dims(x, (b * nh * nw, n * n, c))


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
    return merge_dims(x, (x.shape[0], hp, wp, c))


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
    return merge_dims(x, (b * c, nh * nw, n * n))


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
    return merge_dims(x, (x.shape[0], hp, wp, channels))
