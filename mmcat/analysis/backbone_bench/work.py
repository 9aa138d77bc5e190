"""The work being measured: a model's forward or training step in a dtype,
the square GEMM that gives the machine's peak rate, and output agreement."""
from typing import Any, Callable, List, Tuple

import torch
import torch.nn as nn

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16,
          'fp16': torch.float16}
MODES = ('fwd', 'train')


def as_list(outs: Any) -> List[torch.Tensor]:
    """A model's output(s) as a list of tensors."""
    if isinstance(outs, torch.Tensor):
        return [outs]
    return list(outs)


def make_step(model: nn.Module, x: torch.Tensor, mode: str,
              dtype: str = 'fp32') -> Callable[[], None]:
    """A callable running one forward (``mode='fwd'``: eval, no_grad) or one
    training step (``'train'``: train mode, forward, backward of the sum of
    the outputs' means, gradients set to None first) in ``dtype`` (fp32, or
    autocast to bf16/fp16).

    Args:
        x: the (B, 3, H, W) input of every call.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    device_type = x.device.type
    cast = DTYPES[dtype]

    def autocast():
        return torch.autocast(device_type, dtype=cast,
                              enabled=dtype != 'fp32')

    if mode == 'fwd':

        def forward() -> None:
            model.eval()
            with torch.no_grad(), autocast():
                model(x)

        return forward

    def train_step() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        with autocast():
            outs = as_list(model(x))
        loss = sum(o.float().mean() for o in outs)
        loss.backward()

    return train_step


def make_gemm(n: int, dtype: str, device: str = 'cpu'
              ) -> Tuple[Callable[[], None], int]:
    """An ``n x n x n`` matmul in ``dtype`` and its multiply-adds (n^3)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, DTYPES[dtype])
    b = torch.randn(n, n, generator=g).to(device, DTYPES[dtype])
    out = torch.empty(n, n, device=device, dtype=DTYPES[dtype])

    def gemm() -> None:
        torch.mm(a, b, out=out)

    return gemm, n ** 3


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest absolute difference over paired output tensors (fp32)."""
    la, lb = as_list(a), as_list(b)
    if len(la) != len(lb):
        raise ValueError(f'{len(la)} outputs against {len(lb)}')
    worst = 0.
    for x, y in zip(la, lb):
        if x.shape != y.shape:
            raise ValueError(f'shape {tuple(x.shape)} against '
                             f'{tuple(y.shape)}')
        worst = max(worst, (x.float() - y.float()).abs().max().item())
    return worst
