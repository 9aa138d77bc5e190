"""act_linear and the MLP's act_with_cp: autograd's outputs and gradients,
one hidden-width tensor less kept for backward."""
import pytest
import torch
import torch.nn as nn

from mmcat.models.layers import Mlp
from mmcat.models.layers.recompute import act_linear


def _grads(fn, h, layer, grad):
    h.grad = None
    layer.zero_grad(set_to_none=True)
    out = fn(h)
    out.backward(grad)
    return out.detach(), h.grad, layer.weight.grad, layer.bias.grad


@pytest.mark.parametrize('act', [nn.GELU(), nn.GELU('tanh'), nn.SiLU()])
def test_outputs_and_gradients_are_autograds(act):
    torch.manual_seed(0)
    layer = nn.Linear(12, 5)
    h = torch.randn(2, 7, 12, requires_grad=True)
    grad = torch.randn(2, 7, 5)
    plain = _grads(lambda t: layer(act(t)), h, layer, grad)
    fused = _grads(lambda t: act_linear(act, t, layer), h, layer, grad)
    for a, b in zip(plain, fused):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6)


def test_keeps_only_the_activation_input():
    """Tensors saved for backward: h and the weight, not act(h)."""
    layer = nn.Linear(16, 4)
    h = torch.randn(8, 16, requires_grad=True)
    saved = {}

    def pack(t):
        saved[t.data_ptr()] = t.numel()
        return t

    for name, fn in (('plain', lambda: layer(nn.GELU()(h))),
                     ('fused', lambda: act_linear(nn.GELU(), h, layer))):
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        hidden = [n for n in saved.values() if n == h.numel()]
        assert len(hidden) == (2 if name == 'plain' else 1), (name, saved)


def test_mlp_with_recomputed_activation_matches_the_plain_mlp():
    torch.manual_seed(1)
    plain = Mlp(8, 32)
    fused = Mlp(8, 32, act_with_cp=True)
    fused.load_state_dict(plain.state_dict())
    x = torch.randn(3, 5, 8, requires_grad=True)
    grads = []
    for mlp in (plain, fused):
        x.grad = None
        out = mlp(x)
        out.square().sum().backward()
        grads.append([out.detach(), x.grad] +
                     [p.grad for p in mlp.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-6)


def test_under_bf16_autocast():
    """The product runs in bf16 as F.linear's would; gradients reach the
    fp32 parameters in fp32."""
    torch.manual_seed(2)
    plain = Mlp(16, 64)
    fused = Mlp(16, 64, act_with_cp=True)
    fused.load_state_dict(plain.state_dict())
    x = torch.randn(4, 16)
    results = []
    for mlp in (plain, fused):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = mlp(x)
        out.float().square().sum().backward()
        results.append([out.float()] + [p.grad for p in mlp.parameters()])
    assert results[1][0].dtype == torch.float32
    assert all(p.grad.dtype == torch.float32 for p in fused.parameters())
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, atol=2e-2, rtol=2e-2)


def test_plain_path_with_dropout_in_training():
    """Dropout sits between the activation and fc2: with a rate the MLP
    keeps autograd's own path (the recomputation would need its mask)."""
    mlp = Mlp(4, 8, drop_rate=0.5, act_with_cp=True).train()
    out = mlp(torch.randn(2, 4, requires_grad=True))
    assert 'ActLinear' not in type(out.grad_fn.next_functions[0][0]).__name__
    assert 'ActLinear' in type(mlp.eval()(torch.randn(
        2, 4, requires_grad=True)).grad_fn).__name__
