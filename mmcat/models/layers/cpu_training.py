"""CPU training kernel for IPSA's attention, and its one gate.

IPSA adds a learned relative-position bias to its scores. When that bias
needs a gradient, PyTorch's CPU ``scaled_dot_product_attention`` takes its
math path: contiguous copies of q, k and v in forward, and in backward their
gradients stacked into one tensor and copied again into the projection's
layout. :func:`ipsa_attention` computes the same attention head by head with
batched products on strided views of the q/k/v projection (no copies of q, k,
v) and writes the gradients of q, k and v straight into one buffer in the
projection's layout; it keeps the softmax probabilities for backward, as the
math path does. ``docs/benchmark.md`` (Training step) has the figures.

:func:`applies` is the gate (fp32 on the CPU, autograd on, a bias that needs
a gradient, no attention dropout, no tracer or compiler): the layers' plain
forward asks it once per attention call, a pure function of its inputs, so a
block recomputed under gradient checkpointing takes the same path again.
"""
from typing import Optional, Tuple

import torch

from .patch_partition import exporting


def applies(tokens: torch.Tensor, bias: Optional[torch.Tensor],
            attn_drop: float) -> bool:
    """Whether attention over ``tokens`` with ``bias`` runs through
    :func:`ipsa_attention`: fp32 CPU tensors, autograd recording, a bias
    that needs a gradient, no attention dropout, no autocast, no tracer."""
    return (bias is not None and bias.requires_grad
            and torch.is_grad_enabled() and attn_drop == 0
            and tokens.device.type == 'cpu'
            and tokens.dtype == bias.dtype == torch.float32
            and not torch.is_autocast_enabled('cpu') and not exporting())


class _IPSAAttention(torch.autograd.Function):

    @staticmethod
    def forward(ctx, qkv: torch.Tensor, bias: torch.Tensor, num_heads: int,
                scale: float) -> torch.Tensor:
        s, l, d3 = qkv.shape
        hd = d3 // 3 // num_heads
        heads = qkv.view(s, l, 3, num_heads, hd)
        out = qkv.new_empty(s, l, num_heads, hd)
        probs = qkv.new_empty(num_heads, s, l, l)
        for h in range(num_heads):
            q, k, v = heads[:, :, 0, h], heads[:, :, 1, h], heads[:, :, 2, h]
            scores = torch.baddbmm(bias[0, h].expand(s, l, l), q,
                                   k.transpose(1, 2), alpha=scale)
            torch.softmax(scores, -1, out=probs[h])
            out[:, :, h] = torch.bmm(probs[h], v)
        ctx.save_for_backward(qkv, probs)
        ctx.scale = scale
        return out.view(s, l, d3 // 3)

    @staticmethod
    def backward(ctx, grad: torch.Tensor
                 ) -> Tuple[torch.Tensor, torch.Tensor, None, None]:
        qkv, probs = ctx.saved_tensors
        num_heads, s, l, _ = probs.shape
        hd = qkv.shape[-1] // 3 // num_heads
        heads = qkv.view(s, l, 3, num_heads, hd)
        grad = grad.reshape(s, l, num_heads, hd)
        grad_qkv = qkv.new_empty(s, l, 3, num_heads, hd)
        grad_bias = probs.new_empty(1, num_heads, l, l)
        for h in range(num_heads):
            q, k, v = heads[:, :, 0, h], heads[:, :, 1, h], heads[:, :, 2, h]
            p, g = probs[h], grad[:, :, h]
            grad_qkv[:, :, 2, h] = torch.bmm(p.transpose(1, 2), g)
            grad_p = torch.bmm(g, v.transpose(1, 2))
            grad_scores = torch._softmax_backward_data(grad_p, p, -1, p.dtype)
            torch.sum(grad_scores, 0, out=grad_bias[0, h])
            grad_qkv[:, :, 0, h] = torch.bmm(grad_scores, k).mul_(ctx.scale)
            grad_qkv[:, :, 1, h] = torch.bmm(grad_scores.transpose(1, 2),
                                             q).mul_(ctx.scale)
        return grad_qkv.view(s, l, -1), grad_bias, None, None


def ipsa_attention(qkv: torch.Tensor, bias: torch.Tensor, num_heads: int,
                   scale: float) -> torch.Tensor:
    """``softmax(q k^T * scale + bias) v``, heads concatenated.

    Args:
        qkv: (S, L, 3D), the q/k/v projection (q, k, v then heads, as
            :func:`~.attention.multi_head_attention` splits it).
        bias: (1, num_heads, L, L).

    Returns:
        (S, L, D), what the output projection takes.
    """
    return _IPSAAttention.apply(qkv.contiguous(), bias, num_heads, scale)
