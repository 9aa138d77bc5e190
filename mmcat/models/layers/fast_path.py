"""When CPU inference may take mmcat's fused, cache-sized fast paths.

At high resolution the per-token work of a CAT block (LayerNorm, MLP, the
projections) is bound by memory traffic on a CPU, not by arithmetic: at
800x1344 the MLP's hidden activation of stage 1 is 100 MB, written and read
back from DRAM. Under ``torch.no_grad()`` nothing has to be kept for a backward
pass, so such work runs over chunks of tokens whose intermediates stay in the
CPU's caches (the idea of ``chunk_size_feed_forward`` in HF transformers).
The results are those of the plain path up to float rounding.

The fast paths never apply when autograd records, in training mode (dropout
and drop-path draw per sample), off the CPU, or under tracing, compiling or a
dispatch mode (FLOP counters must see the plain ops).
"""
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.nn as nn

#: Bytes of intermediate activations one chunk may produce.
_chunk_bytes = 2 * 1024 * 1024
#: Work whose intermediates total less than this runs in one piece: it stays
#: in the last-level cache anyway, and bigger GEMMs run faster.
_min_split_bytes = 16 * 1024 * 1024


def chunk_bytes() -> int:
    """The current per-chunk activation budget in bytes."""
    return _chunk_bytes


@contextmanager
def chunk_budget(num_bytes: int,
                 min_split_bytes: Optional[int] = None) -> Iterator[None]:
    """Temporarily set the per-chunk activation budget and, optionally, the
    size below which work is not split (tests, tuning)."""
    global _chunk_bytes, _min_split_bytes
    if num_bytes < 1:
        raise ValueError(f'chunk budget must be >= 1 byte, got {num_bytes}')
    old = _chunk_bytes, _min_split_bytes
    _chunk_bytes = num_bytes
    if min_split_bytes is not None:
        _min_split_bytes = min_split_bytes
    try:
        yield
    finally:
        _chunk_bytes, _min_split_bytes = old


def rows_per_chunk(row_bytes: int, rows: int) -> int:
    """Rows (tokens, sequences) per chunk when each of ``rows`` rows
    produces ``row_bytes`` of intermediates: all of them when they total
    less than the split threshold, else a chunk budget's worth (>= 1)."""
    if row_bytes * rows <= _min_split_bytes:
        return rows
    return max(1, _chunk_bytes // max(1, row_bytes))


def traced_or_counted() -> bool:
    """True under tracing/compiling or a dispatch mode (FLOP counters), which
    must see the plain ops."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return True
    try:
        from torch.utils._python_dispatch import _get_current_dispatch_mode
        return _get_current_dispatch_mode() is not None
    except ImportError:  # pragma: no cover - older torch
        return False


def cpu_inference(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``module`` may run its CPU inference fast path on ``x``."""
    return (not torch.is_grad_enabled() and not module.training
            and x.device.type == 'cpu' and not traced_or_counted())
