"""The CPU training kernel of IPSA's attention against the plain path
(PyTorch's SDPA), outputs and gradients, and its gate."""
import pytest
import torch

from mmcat.models import CAT
from mmcat.models.layers import InnerPatchAttention
from mmcat.models.layers import cpu_training

MINI = dict(embed_dims=16, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))


def _plain(monkeypatch):
    monkeypatch.setattr(cpu_training, 'applies', lambda *args: False)


def _run(module, x, loss=lambda out: out.square().sum()):
    """Outputs, input gradient and parameter gradients of one step."""
    module.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_()
    out = module(x)
    loss(out).backward()
    outs = [o.detach() for o in (out if isinstance(out, tuple) else (out, ))]
    return outs + [x.grad] + [p.grad for p in module.parameters()]


@pytest.mark.parametrize('heads', [1, 3])
def test_ipsa_kernel_equals_the_plain_path(monkeypatch, heads):
    """Awkward size (17x23 pads to 21x28), random bias table."""
    torch.manual_seed(heads)
    attn = InnerPatchAttention(12, heads).train()
    with torch.no_grad():
        attn.relative_position_bias_table.normal_(0, 1)
    x = torch.randn(2, 17, 23, 12)
    fast = _run(attn, x)
    _plain(monkeypatch)
    plain = _run(attn, x)
    for a, b in zip(plain, fast):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_cat_training_step_equals_the_plain_path(monkeypatch):
    torch.manual_seed(0)
    model = CAT(arch=MINI, drop_path_rate=0.).train()
    with torch.no_grad():       # biases that matter
        for name, p in model.named_parameters():
            if 'relative_position_bias_table' in name:
                p.normal_(0, 1)
    x = torch.randn(1, 3, 45, 61)

    def loss(outs):
        return sum(o.square().sum() for o in outs)

    fast = _run(model, x, loss)
    _plain(monkeypatch)
    plain = _run(model, x, loss)
    for a, b in zip(plain, fast):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)


def test_ipsa_training_forward_takes_the_kernel(monkeypatch):
    calls = []
    kernel = cpu_training.ipsa_attention
    monkeypatch.setattr(cpu_training, 'ipsa_attention',
                        lambda *a: calls.append(1) or kernel(*a))
    attn = InnerPatchAttention(8, 2).train()
    x = torch.randn(1, 7, 7, 8)
    attn(x).sum().backward()
    assert calls == [1]
    with torch.no_grad():
        attn(x)
    attn.relative_position_bias_table.requires_grad_(False)   # frozen
    attn(x.requires_grad_())
    assert calls == [1]


def test_gate():
    tokens = torch.randn(4, 49, 8)
    bias = torch.zeros(1, 2, 49, 49, requires_grad=True)
    assert cpu_training.applies(tokens, bias, 0.)
    assert not cpu_training.applies(tokens, None, 0.)
    assert not cpu_training.applies(tokens, bias, 0.1)       # dropout
    assert not cpu_training.applies(tokens, bias.detach(), 0.)
    with torch.no_grad():
        assert not cpu_training.applies(tokens, bias, 0.)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert not cpu_training.applies(tokens, bias, 0.)
    assert not cpu_training.applies(tokens.double(), bias.double(), 0.)
