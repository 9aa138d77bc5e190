"""``linear(act(h))`` that keeps ``h`` alone for backward.

Autograd keeps both the activation's input ``h`` (for the activation's
gradient) and its output ``act(h)`` (for the linear layer's weight gradient):
two tensors of the MLP's hidden width, most of a transformer block's
activation memory. The activation is cheap next to the linear layer, so
:func:`act_linear` keeps ``h`` only and computes ``act(h)`` again in
backward. Gradients are those of ``linear(act(h))`` computed by autograd (the
same kernels on the same values).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class _ActLinear(torch.autograd.Function):

    @staticmethod
    def forward(ctx, h: torch.Tensor, act: nn.Module, weight: torch.Tensor,
                bias: Optional[torch.Tensor]) -> torch.Tensor:
        ctx.act = act
        ctx.has_bias = bias is not None
        with torch.no_grad():
            out = F.linear(act(h), weight, bias)
        ctx.save_for_backward(h, weight)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor
                 ) -> Tuple[Optional[torch.Tensor], None, Optional[torch.Tensor],
                            Optional[torch.Tensor]]:
        h, weight = ctx.saved_tensors
        with torch.enable_grad():
            h_ = h.detach().requires_grad_(ctx.needs_input_grad[0])
            act = ctx.act(h_)
        # under autocast the forward's product ran in grad's dtype
        grad2d = grad.reshape(-1, grad.shape[-1])
        grad_w = grad_b = grad_h = None
        if ctx.needs_input_grad[2]:
            grad_w = grad2d.t().mm(
                act.detach().reshape(-1, act.shape[-1]).to(grad.dtype))
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_b = grad2d.sum(0)
        if ctx.needs_input_grad[0]:
            grad_act = grad.matmul(weight.to(grad.dtype))
            grad_h, = torch.autograd.grad(act, h_, grad_act.to(act.dtype))
        return grad_h, None, grad_w, grad_b


def act_linear(act: nn.Module, h: torch.Tensor,
               linear: nn.Linear) -> torch.Tensor:
    """``linear(act(h))``, keeping only ``h`` for backward (``act(h)`` is
    computed again there).

    Args:
        act: an elementwise activation module (no parameters).
        h: (..., in_features).
        linear: the layer applied to ``act(h)``.

    Returns:
        (..., out_features).
    """
    return _ActLinear.apply(h, act, linear.weight, linear.bias)
