"""The attention call of IPSA and CPSA, and its one device gate.

CUDA's fused attention kernels take only some head dimensions: the
memory-efficient kernel a multiple of 4 in fp32 and of 8 in fp16/bf16, flash
attention and cuDNN a multiple of 8 (fp16/bf16 only). CPSA's tokens are the
N*N = 49 values of a patch (one head of 49, or 7 heads of 7), so on a GPU its
attention would fall to the math path, which materialises every (L, L)
attention matrix. :func:`scaled_dot_product_attention` zero-pads q, k and v
along the head dimension to the next multiple of 8 there, passes the scale of
the true head dimension and drops the padded output columns: the zeros add
nothing to q.k^T and the padded columns of v are never read, so the result
and its gradients are those of the unpadded call.

:func:`needs_head_padding` is the gate: CUDA tensors with an unaligned head
dimension. On the CPU the plain call is kept (its kernels take any head
dimension and padding only costs time); :func:`padded_attention` is the
padded call itself, callable on any device.
"""
from typing import Optional

import torch
import torch.nn.functional as F

#: The head-dimension multiple every fused CUDA kernel accepts in every dtype.
HEAD_DIM_MULTIPLE = 8


def needs_head_padding(q: torch.Tensor) -> bool:
    """Whether attention over ``q`` (..., L, head_dim) pads its heads: on a
    CUDA device, when ``head_dim`` is not a multiple of 8."""
    return q.is_cuda and q.shape[-1] % HEAD_DIM_MULTIPLE != 0


def scaled_dot_product_attention(q: torch.Tensor,
                                 k: torch.Tensor,
                                 v: torch.Tensor,
                                 attn_mask: Optional[torch.Tensor] = None,
                                 dropout_p: float = 0.,
                                 scale: Optional[float] = None
                                 ) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` for IPSA and CPSA.

    Args:
        q, k, v: (S, heads, L, head_dim).
        attn_mask: additive float bias broadcastable to (S, heads, L, L), or
            None; it is cast to q's dtype (the memory-efficient kernel takes
            no other).
        dropout_p: dropout on the attention weights.
        scale: factor of q.k^T; ``head_dim ** -0.5`` when None.

    Returns:
        (S, heads, L, head_dim).
    """
    if attn_mask is not None:
        attn_mask = attn_mask.to(q.dtype)
    if needs_head_padding(q):
        return padded_attention(q, k, v, attn_mask, dropout_p, scale)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale)


def padded_attention(q: torch.Tensor,
                     k: torch.Tensor,
                     v: torch.Tensor,
                     attn_mask: Optional[torch.Tensor] = None,
                     dropout_p: float = 0.,
                     scale: Optional[float] = None,
                     multiple: int = HEAD_DIM_MULTIPLE) -> torch.Tensor:
    """Attention with the head dimension zero-padded to ``multiple``: the
    same result and gradients as the unpadded call, on kernels that need an
    aligned head dimension.

    Args:
        q, k, v: (S, heads, L, head_dim).
        attn_mask: additive bias broadcastable to (S, heads, L, L), or None
            (passed on as it is).
        dropout_p: dropout on the attention weights.
        scale: factor of q.k^T; ``head_dim ** -0.5`` (the true head
            dimension) when None.
        multiple: the head dimension is padded to a multiple of this.

    Returns:
        (S, heads, L, head_dim).
    """
    head_dim = q.shape[-1]
    if scale is None:
        scale = head_dim ** -0.5
    out = F.scaled_dot_product_attention(
        pad_head_dim(q, multiple), pad_head_dim(k, multiple),
        pad_head_dim(v, multiple), attn_mask=attn_mask, dropout_p=dropout_p,
        scale=scale)
    return out[..., :head_dim]


def pad_head_dim(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """(S, heads, L, d) -> (S, heads, L, d') with d' the next multiple of
    ``multiple``, zeros after column d.

    The copy is laid out (S, L, heads, d') in memory, the layout of q, k and
    v split from one projection, which cuDNN's attention asks for.
    """
    extra = -x.shape[-1] % multiple
    if extra == 0:
        return x
    return F.pad(x.transpose(-3, -2), (0, extra)).transpose(-3, -2)
