"""Space-to-depth ("slice"): fold each s x s block of pixels into channels.

The sub-grids are concatenated in the order of the CAT authors' patch
projection (and of YOLOv5's Focus slice): column offset outer, row offset
inner, i.e. for s = 2: (0::2, 0::2), (1::2, 0::2), (0::2, 1::2), (1::2, 1::2).
Output channel ``(dx * s + dy) * C + c`` holds ``x[c, s * i + dy, s * j + dx]``.
"""
import torch
import torch.nn as nn


def _check(h: int, w: int, factor: int) -> None:
    if factor < 1:
        raise ValueError(f'space-to-depth factor must be >= 1, got {factor}')
    if h % factor or w % factor:
        raise ValueError(
            f'space-to-depth by {factor} needs H and W divisible by {factor}, '
            f'got {h}x{w}; pad the input first')


def space_to_depth(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Channels-first space-to-depth.

    Args:
        x: (B, C, H, W), H and W divisible by ``factor``.
        factor: block size s.

    Returns:
        (B, s*s*C, H/s, W/s).
    """
    b, c, h, w = x.shape
    _check(h, w, factor)
    s = factor
    x = x.view(b, c, h // s, s, w // s, s)          # b c i dy j dx
    x = x.permute(0, 5, 3, 1, 2, 4)                  # b dx dy c i j
    return x.reshape(b, s * s * c, h // s, w // s)


def space_to_depth_nhwc(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Channels-last space-to-depth.

    Args:
        x: (B, H, W, C), H and W divisible by ``factor``.
        factor: block size s.

    Returns:
        (B, H/s, W/s, s*s*C), channels ordered as in :func:`space_to_depth`.
    """
    b, h, w, c = x.shape
    _check(h, w, factor)
    s = factor
    x = x.view(b, h // s, s, w // s, s, c)           # b i dy j dx c
    x = x.permute(0, 1, 3, 4, 2, 5)                  # b i j dx dy c
    return x.reshape(b, h // s, w // s, s * s * c)


class SpaceToDepth(nn.Module):
    """Module form of :func:`space_to_depth` (no parameters, no multiplications).

    Args:
        factor: block size s.
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f'space-to-depth factor must be >= 1, got {factor}')
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, s*s*C, H/s, W/s)."""
        return space_to_depth(x, self.factor)

    def extra_repr(self) -> str:
        return f'factor={self.factor}'
