"""Stochastic depth (drop path) in one pass over the map."""
import torch
import torch.nn as nn


class DropPath(nn.Module):
    """Zero a residual branch for a random subset of the samples and scale
    it by ``1 / (1 - drop_prob)`` for the others (stochastic depth).

    The masks are those of ``mmcv.cnn.bricks.DropPath`` (the same random
    draws), folded into a per-sample factor first: one multiplication over
    the map forward and one backward, where mmcv's divides and then
    multiplies the whole map (two of each).

    Args:
        drop_prob: probability of dropping the branch of a sample, in [0, 1).
    """

    def __init__(self, drop_prob: float = 0.1) -> None:
        super().__init__()
        if not 0 <= drop_prob < 1:
            raise ValueError(f'DropPath: drop_prob must be in [0, 1), got '
                             f'{drop_prob}')
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, ...) -> (B, ...)."""
        if self.drop_prob == 0. or not self.training:
            return x
        keep = 1 - self.drop_prob
        shape = (x.shape[0], ) + (1, ) * (x.ndim - 1)
        kept = (keep + torch.rand(shape, dtype=x.dtype,
                                  device=x.device)).floor_()
        return x * kept.div_(keep)

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'
