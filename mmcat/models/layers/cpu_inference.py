"""CPU inference kernels for CAT: the layers' results, less memory traffic.

At detection sizes a CAT block's per-token work (LayerNorm, MLP, the
projections, the partition copies) is bound by memory traffic on a CPU, not
by arithmetic. Without autograd nothing has to be kept for a backward pass,
so this module runs the same computation over pieces whose intermediates stay
in the CPU's caches (the idea of ``chunk_size_feed_forward`` in HF
transformers), with oneDNN's linear kernel (the one ``torch.compile`` uses for
frozen CPU models) and short sequences attended head by head. The results are those of the layers'
own ``forward`` up to float rounding; ``docs/benchmark.md`` has the figures.

This is the only module with CPU-inference code, and :func:`policy_for` is
the one gate: :class:`~mmcat.models.CAT` asks it once per forward and, when it
gets a policy, runs its stages through :func:`stage_forward`. The layers
themselves have a single plain forward. Tracers, compilers and exporters see
the plain path (the gate is off under them); FLOP counters and other
dispatch-level tools ask for it with :func:`plain_forward`.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import CrossPatchAttention, InnerPatchAttention
from .blocks import AttentionBlock
from .patch_partition import (channel_patch_partition, channel_patch_reverse,
                              crop, pad_to_multiple, patch_partition,
                              patch_reverse)

MiB = 1024 * 1024


@dataclass(frozen=True)
class CPUInferencePolicy:
    """How CPU inference cuts its work.

    Args:
        chunk_bytes: intermediates one chunk of tokens or sequences may make.
        min_split_bytes: work whose intermediates total less than this (a
            server CPU's last-level cache) runs in one piece: it stays in
            cache anyway, and larger matrix products run faster.
        max_bmm_tokens: sequences of at most this many tokens (IPSA's
            patches) are attended head by head with batched matrix products,
            which beats SDPA's CPU kernel there...
        min_bmm_sequences: ...when there are at least this many of them
            (fewer do not pay for the per-head calls).
    """
    chunk_bytes: int = 8 * MiB
    min_split_bytes: int = 32 * MiB
    max_bmm_tokens: int = 128
    min_bmm_sequences: int = 16

    def __post_init__(self) -> None:
        if self.chunk_bytes < 1:
            raise ValueError(f'chunk_bytes must be >= 1, got '
                             f'{self.chunk_bytes}')

    def rows_per_chunk(self, row_bytes: int, rows: int) -> int:
        """Rows (tokens, sequences) per chunk when each of ``rows`` rows makes
        ``row_bytes`` of intermediates: all of them when they total at most
        ``min_split_bytes``, else a chunk's worth (>= 1)."""
        if row_bytes * rows <= self.min_split_bytes:
            return rows
        return max(1, self.chunk_bytes // max(1, row_bytes))


# ------------------------------------------------------------------ the gate
def policy_for(model: nn.Module,
               x: torch.Tensor) -> Optional[CPUInferencePolicy]:
    """The policy ``model`` runs ``x`` with, or None for the plain path.

    CPU inference applies when the model holds a policy
    (``model.cpu_inference``), is in eval mode, autograd is off, ``x`` is on
    the CPU, and no tracer, compiler or exporter is at work.
    """
    policy = getattr(model, 'cpu_inference', None)
    if (policy is None or model.training or torch.is_grad_enabled()
            or x.device.type != 'cpu' or torch.jit.is_tracing()
            or torch.compiler.is_compiling()):
        return None
    return policy


@contextmanager
def plain_forward(model: nn.Module) -> Iterator[nn.Module]:
    """Run every module of ``model`` that holds a CPU-inference policy on
    its plain path inside the block (FLOP counters, reference checks)."""
    holders = [m for m in model.modules()
               if getattr(m, 'cpu_inference', None) is not None]
    saved = [m.cpu_inference for m in holders]
    for m in holders:
        m.cpu_inference = None
    try:
        yield model
    finally:
        for m, policy in zip(holders, saved):
            m.cpu_inference = policy


# --------------------------------------------------------------- primitives
@lru_cache(maxsize=None)
def onednn_linear_available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether oneDNN's linear kernel runs in ``dtype`` on this CPU and
    agrees with ``F.linear`` (bf16 needs AVX512-BF16 or AMX)."""
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
    """``layer(x)`` through oneDNN's linear kernel (no backward).

    In fp32, or in the autocast dtype under CPU autocast (as ``F.linear``
    would), where this CPU supports it; otherwise the plain layer.

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


def attend_per_head(qkv: torch.Tensor,
                    scale: float,
                    bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``softmax(q k^T * scale + bias) v`` without dropout, one head at a time
    with batched products on strided views of the q/k/v projection.

    Args:
        qkv: (S, L, 3, heads, hd), the q/k/v projection viewed by head.
        bias: (1, heads, L, L) or None.

    Returns:
        (S, L, heads * hd), heads concatenated as the output projection
        expects.
    """
    s, l, _, num_heads, hd = qkv.shape
    out = qkv.new_empty(s, l, num_heads, hd)
    for h in range(num_heads):
        q, k, v = qkv[:, :, 0, h], qkv[:, :, 1, h], qkv[:, :, 2, h]  # S, L, hd
        if bias is None:
            attn = torch.bmm(q, k.transpose(1, 2)).mul_(scale)
        else:
            attn = torch.baddbmm(bias[0, h].expand(s, l, l), q,
                                 k.transpose(1, 2), alpha=scale)
        torch.softmax(attn, -1, out=attn)
        out[:, :, h] = torch.bmm(attn, v)
    return out.view(s, l, num_heads * hd)


def multi_head_attention(attn: nn.Module, tokens: torch.Tensor,
                         policy: CPUInferencePolicy,
                         bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``attn.attend(tokens)`` of IPSA or CPSA (eval: no dropout).

    Args:
        tokens: (S, L, D).
        bias: (1, heads, L, L) or None.

    Returns:
        (S, L, D).
    """
    s, l, d = tokens.shape
    qkv = linear(attn.qkv, tokens).view(s, l, 3, attn.num_heads,
                                        d // attn.num_heads)
    if bias is not None:
        bias = bias.to(qkv.dtype)
    if l <= policy.max_bmm_tokens and s >= policy.min_bmm_sequences:
        return linear(attn.proj, attend_per_head(qkv, attn.scale, bias))
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)           # S, heads, L, hd
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                         scale=attn.scale)
    return linear(attn.proj, out.transpose(1, 2).reshape(s, l, d))


def channel_patch_partition_by_rows(x: torch.Tensor,
                                    patch_size: int) -> torch.Tensor:
    """:func:`~.patch_partition.channel_patch_partition`, copied one row of
    patches at a time so that each row stays in cache while every channel is
    read from it (one strided pass re-reads each cache line per channel)."""
    b, hp, wp, c = x.shape
    n = patch_size
    nh, nw = hp // n, wp // n
    x = x.view(b, nh, n, nw, n, c)
    out = x.new_empty(b, c, nh, nw, n, n)
    for i in range(nh):
        out[:, :, i].copy_(x[:, i].permute(0, 4, 2, 1, 3))
    return out.view(b * c, nh * nw, n * n)


# ------------------------------------------------------------------- layers
def ipsa_forward(attn: InnerPatchAttention, x: torch.Tensor,
                 policy: CPUInferencePolicy) -> torch.Tensor:
    """``attn(x)`` over bands of patch rows sized so that a band's q, k and
    v stay in cache: its padding, partition, attention and reverse do too,
    and no map-sized temporary is made but the output.

    Args:
        x: (B, H, W, C).

    Returns:
        (B, H, W, C).
    """
    b, h, w, c = x.shape
    n = attn.patch_size
    rows, cols = -(-h // n), -(-w // n)                       # patch grid
    per_patch = 3 * n * n * c * x.element_size()              # its q, k, v
    band = max(1, policy.rows_per_chunk(per_patch, b * rows * cols)
               // (b * cols))                                 # patch rows
    bias = attn.relative_position_bias().unsqueeze(0)
    if band >= rows:
        return _ipsa_band(attn, x, policy, bias)
    out = None
    for top in range(0, h, band * n):
        part = _ipsa_band(attn, x[:, top:top + band * n], policy, bias)
        if out is None:
            out = x.new_empty(b, h, w, c, dtype=part.dtype)
        out[:, top:top + band * n] = part
    return out


def _ipsa_band(attn: InnerPatchAttention, x: torch.Tensor,
               policy: CPUInferencePolicy,
               bias: torch.Tensor) -> torch.Tensor:
    """(B, h, w, C) -> (B, h, w, C): pad, partition, attend, reverse, crop."""
    _, h, w, _ = x.shape
    x = pad_to_multiple(x, attn.patch_size)
    tokens = patch_partition(x, attn.patch_size)              # S, N*N, C
    out = multi_head_attention(attn, tokens, policy, bias)
    return crop(patch_reverse(out, attn.patch_size, x.shape[1:3]), h, w)


def cpsa_forward(attn: CrossPatchAttention, x: torch.Tensor,
                 policy: CPUInferencePolicy) -> torch.Tensor:
    """``attn(x)`` over chunks of channel sequences sized so that their q, k
    and v stay in cache (channels are independent sequences).

    Args:
        x: (B, H, W, C).

    Returns:
        (B, H, W, C).
    """
    _, h, w, c = x.shape
    x = pad_to_multiple(x, attn.patch_size)
    if x.shape[1] > attn.patch_size:
        tokens = channel_patch_partition_by_rows(x, attn.patch_size)
    else:   # a single row of patches: nothing to gain
        tokens = channel_patch_partition(x, attn.patch_size)
    step = policy.rows_per_chunk(
        3 * tokens[0].numel() * tokens.element_size(), tokens.shape[0])
    if step >= tokens.shape[0]:
        out = multi_head_attention(attn, tokens, policy)
    else:
        out = torch.empty_like(tokens)
        for i in range(0, tokens.shape[0], step):
            out[i:i + step] = multi_head_attention(attn, tokens[i:i + step],
                                                   policy)
    return crop(channel_patch_reverse(out, attn.patch_size, x.shape[1:3], c),
                h, w)


def attention_block_forward(block: AttentionBlock, x: torch.Tensor,
                            policy: CPUInferencePolicy) -> torch.Tensor:
    """``block(x)``: the attention by its kernel, then ``x + MLP(LN(x))``
    written in place over chunks of tokens whose hidden activations stay in
    cache (``x`` is then this function's own intermediate).

    Args:
        x: (B, H, W, C).

    Returns:
        (B, H, W, C).
    """
    attn = block.attn
    if isinstance(attn, InnerPatchAttention):
        x = x + ipsa_forward(attn, block.norm1(x), policy)
    elif isinstance(attn, CrossPatchAttention):
        x = x + cpsa_forward(attn, block.norm1(x), policy)
    else:
        x = x + attn(block.norm1(x))
    mlp = block.mlp
    tokens = x.view(-1, x.shape[-1])
    step = policy.rows_per_chunk(mlp.fc1.out_features * x.element_size(),
                                 tokens.shape[0])
    for i in range(0, tokens.shape[0], step):
        part = tokens[i:i + step]
        part += linear(mlp.fc2, mlp.act(linear(mlp.fc1, block.norm2(part))))
    return x


def stage_forward(stage: nn.Module, x: torch.Tensor,
                  policy: CPUInferencePolicy
                  ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``stage(x)`` of a :class:`~mmcat.models.backbones.cat.CATStage`.

    Args:
        x: (B, H, W, C).

    Returns:
        The stage output (B, H, W, C) and the projected input of the next
        stage (or None), as the stage returns them.
    """
    for cab in stage.blocks:
        for block in (cab.pre_ipsa, cab.cpsa, cab.post_ipsa):
            x = attention_block_forward(block, x, policy)
    return x, (stage.downsample(x) if stage.downsample is not None else None)
