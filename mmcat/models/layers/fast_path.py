"""When CPU inference may take mmcat's fused, cache-sized fast paths.

At high resolution the per-token work of a CAT block (LayerNorm, MLP, the
projections) is bound by memory traffic on a CPU, not by arithmetic: at
800x1344 the MLP's hidden activation of stage 1 is 100 MB, written and read
back from DRAM. Under ``torch.no_grad()`` nothing has to be kept for a backward
pass, so such work runs over chunks of tokens whose intermediates stay in the
CPU's caches (the idea of ``chunk_size_feed_forward`` in HF transformers).
The results are those of the plain path up to float rounding.

Their linear layers run through oneDNN's kernel (the one ``torch.compile``
uses for frozen CPU models), which is 5-20 % faster than the default MKL GEMM
at CAT's shapes on the CPUs measured (docs/benchmark.md).

The fast paths never apply when autograd records, in training mode (dropout
and drop-path draw per sample), off the CPU, or under tracing, compiling or a
dispatch mode (FLOP counters must see the plain ops).
"""
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

#: Bytes of intermediate activations one chunk may produce.
_chunk_bytes = 8 * 1024 * 1024
#: Work whose intermediates total less than this (a server CPU's last-level
#: cache) runs in one piece: it stays in cache anyway, and bigger GEMMs run
#: faster (CAT-S at 800x1344: 2 MB chunks and a 16 MB threshold made stage 3
#: 1.07x the transcription's time, one piece 0.94x).
_min_split_bytes = 32 * 1024 * 1024


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


@lru_cache(maxsize=None)
def onednn_linear_available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether oneDNN's linear kernel runs in ``dtype``
    on this CPU and agrees with ``F.linear`` (bf16 needs AVX512-BF16 or
    AMX: on AVX2-only CPUs oneDNN has no bf16 inner product)."""
    op = getattr(torch.ops.mkldnn, '_linear_pointwise', None)
    if op is None or not torch.backends.mkldnn.is_available():
        return False
    try:
        x, w, b = (torch.randn(2, 4, dtype=dtype), torch.randn(
            3, 4, dtype=dtype), torch.randn(3, dtype=dtype))
        tol = 1e-5 if dtype == torch.float32 else 5e-2
        return bool(
            torch.allclose(op(x, w, b, 'none', [], ''), F.linear(x, w, b),
                           atol=tol, rtol=tol))
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


def linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` for CPU inference.

    Runs oneDNN's linear kernel in fp32, or in the autocast dtype under CPU
    autocast (as ``F.linear`` would), where this CPU supports it; otherwise
    the plain layer. Callers decide with
    :func:`cpu_inference`: the kernel has no backward.

    Args:
        x: (..., in_features).

    Returns:
        (..., out_features).
    """
    w, b = layer.weight, layer.bias
    autocast = torch.is_autocast_enabled('cpu')
    dtype = torch.get_autocast_dtype('cpu') if autocast else x.dtype
    if (dtype in (torch.float32, torch.bfloat16)
            and (autocast or w.dtype == dtype)
            and onednn_linear_available(dtype)):
        x, w = x.to(dtype), w.to(dtype)
        b = b.to(dtype) if b is not None else None
        return torch.ops.mkldnn._linear_pointwise(x, w, b, 'none', [], '')
    return layer(x)
