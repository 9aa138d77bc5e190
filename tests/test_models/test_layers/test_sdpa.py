"""Attention with the head dimension padded for CUDA's fused kernels is the
plain attention: outputs and gradients (q, k, v, the bias, and every
parameter of IPSA and CPSA) for IPSA with its relative-position bias, CPSA's
one head of 49 and the seven heads of 7 of the paper's ablation; on CUDA the
padded shapes reach a fused kernel. Attention under bf16 autocast stays
accurate, large logits included."""
from typing import List

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from mmcat.models.layers import CrossPatchAttention, InnerPatchAttention
from mmcat.models.layers import sdpa

# (heads, head_dim, tokens L, with a bias): IPSA over a 7 x 7 patch with a
# head dimension the fused kernels refuse, CPSA with 1 head of 49 and 7 of 7
CASES = {'ipsa_bias': (3, 12, 49, True), 'cpsa_1x49': (1, 49, 30, False),
         'cpsa_7x7': (7, 7, 30, False)}


def _assert_close(got: torch.Tensor, want: torch.Tensor,
                  device: torch.device, what: str = '') -> None:
    """Equal up to fp32 rounding: the largest difference within 2e-6 of the
    largest value on the CPU (one kernel at two head widths), 1e-4 on CUDA
    (the math kernel against a fused one)."""
    assert got.shape == want.shape, what
    rel = 1e-4 if device.type == 'cuda' else 2e-6
    err = (got - want).abs().max().item()
    scale = want.abs().max().item()
    assert err <= rel * max(scale, 1e-3), f'{what}: {err:.2e} of {scale:.2e}'


def _grads(out: torch.Tensor, upstream: torch.Tensor,
           inputs: List[torch.Tensor]) -> List[torch.Tensor]:
    return list(torch.autograd.grad(out, inputs, upstream))


@pytest.mark.parametrize('case', list(CASES))
def test_padded_attention_equals_plain(case, device):
    heads, hd, length, with_bias = CASES[case]
    g = torch.Generator().manual_seed(hd)
    q, k, v = (torch.randn(4, heads, length, hd, generator=g).to(device)
               .requires_grad_() for _ in range(3))
    bias = (torch.randn(1, heads, length, length, generator=g).to(device)
            .requires_grad_() if with_bias else None)
    inputs = [q, k, v] + ([bias] if with_bias else [])
    scale = 0.3                       # an explicit scale is kept as given
    upstream = torch.randn(4, heads, length, hd, generator=g).to(device)

    for kwargs in (dict(scale=scale), {}):   # and the default: true hd
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                             **kwargs)
        out = sdpa.padded_attention(q, k, v, bias, **kwargs)
        _assert_close(out, ref, device, 'output')
        for i, (got, want) in enumerate(zip(_grads(out, upstream, inputs),
                                            _grads(ref, upstream, inputs))):
            _assert_close(got, want, device, 'qkvb'[i] + ' grad')


def test_pad_head_dim_layout():
    """Zeros after the true columns; the copy is (S, L, heads, d') in memory
    (cuDNN's layout); an aligned head dimension is left alone."""
    x = torch.randn(2, 3, 5, 7)
    padded = sdpa.pad_head_dim(x, 8)
    assert padded.shape == (2, 3, 5, 8)
    assert torch.equal(padded[..., :7], x)
    assert not padded[..., 7:].any()
    assert padded.stride() == (5 * 3 * 8, 8, 3 * 8, 1)
    aligned = torch.randn(2, 3, 5, 16)
    assert sdpa.pad_head_dim(aligned, 8) is aligned


def test_the_gate_pads_cuda_only(device):
    """The call pads (to 56) where the tensors are on CUDA and keeps CPSA's 49
    on the CPU; IPSA's 32 of the CAT sizes is never padded."""
    seen: List[int] = []

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is F.scaled_dot_product_attention:
                seen.append(args[0].shape[-1])
            return func(*args, **(kwargs or {}))

    with Record():
        for hd in (49, 32):
            q = torch.randn(2, 1, 10, hd, device=device)
            out = sdpa.scaled_dot_product_attention(q, q, q)
            assert out.shape == q.shape
    assert seen == ([56, 32] if device.type == 'cuda' else [49, 32])


# ------------------------------------------------------------------ modules
def _module(case: str, device: torch.device) -> nn.Module:
    heads, hd, _, _ = CASES[case]
    torch.manual_seed(hd)
    module = (InnerPatchAttention(embed_dims=heads * hd, num_heads=heads)
              if case.startswith('ipsa') else
              CrossPatchAttention(patch_size=7, num_heads=heads))
    with torch.no_grad():   # biases and the position table too
        for p in module.parameters():
            p.normal_(0, 0.3)
    return module.to(device).train()


def _run(module: nn.Module, x: torch.Tensor, upstream: torch.Tensor,
         pad: bool, monkeypatch) -> List[torch.Tensor]:
    """Output, input gradient and parameter gradients, with the padding
    forced on or off."""
    monkeypatch.setattr(sdpa, 'needs_head_padding', lambda q: pad)
    x = x.detach().requires_grad_()
    module.zero_grad()
    out = module(x)
    out.backward(upstream)
    return [out.detach(), x.grad] + [p.grad.clone()
                                     for p in module.parameters()]


@pytest.mark.parametrize('case', list(CASES))
def test_layers_padded_equal_plain(case, device, monkeypatch):
    """IPSA (bias table included) and CPSA give the same output and the same
    gradients with and without padded heads; odd map size."""
    module = _module(case, device)
    c = module.embed_dims if case.startswith('ipsa') else 5
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 15, 17, c, generator=g).to(device)
    upstream = torch.randn(2, 15, 17, c, generator=g).to(device)
    plain = _run(module, x, upstream, False, monkeypatch)
    padded = _run(module, x, upstream, True, monkeypatch)
    names = ['output', 'input grad'] + [n for n, _ in
                                        module.named_parameters()]
    for name, got, want in zip(names, padded, plain):
        _assert_close(got, want, device, f'{case} {name}')


@pytest.mark.parametrize('dtype', [torch.float32, torch.float16,
                                   torch.bfloat16])
@pytest.mark.parametrize('case', list(CASES))
def test_cuda_padded_shapes_take_a_fused_kernel(case, dtype, device):
    """What the padding is for: with an aligned head dimension PyTorch picks
    a fused kernel, in fp32 and half precision, forward and training."""
    if device.type != 'cuda':
        pytest.skip('the fused-kernel choice is a CUDA matter')
    from mmcat.analysis.sdpa_backends import sdpa_backend
    heads, hd, length, with_bias = CASES[case]
    q = torch.randn(64, heads, length, hd, device=device, dtype=dtype)
    bias = (torch.randn(1, heads, length, length, device=device, dtype=dtype)
            if with_bias else None)
    padded = sdpa.pad_head_dim(q, sdpa.HEAD_DIM_MULTIPLE)
    for grad in (False, True):
        p = padded.detach().requires_grad_(grad)
        choice = sdpa_backend(p, p, p, bias)
        assert choice.backend != 'MATH', (case, dtype, grad, choice)


# -------------------------------------------------------------- bf16 autocast
def test_bf16_autocast_is_accurate():
    """IPSA and CPSA under CPU bf16 autocast stay within bf16 rounding of
    fp32 (outputs in bf16, attention weights from fp32 softmax sums)."""
    for case in CASES:
        module = _module(case, torch.device('cpu')).eval()
        c = module.embed_dims if case.startswith('ipsa') else 5
        x = torch.randn(2, 14, 21, c, generator=torch.Generator()
                        .manual_seed(2))
        with torch.no_grad():
            ref = module(x)
            with torch.autocast('cpu', torch.bfloat16):
                out = module(x)
        assert out.dtype == torch.bfloat16, case
        err = (out.float() - ref).abs().max() / ref.abs().max()
        assert err < 2e-2, (case, err)


def _orthogonal_patches(patches: int, dims: int, norm: float,
                        seed: int) -> torch.Tensor:
    """(patches * 49, dims) tokens, orthogonal within each patch, of length
    ``norm``."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.linalg.qr(torch.randn(dims, dims, generator=g))[0][:49]
            for _ in range(patches)]
    return torch.cat(rows) * norm


@pytest.mark.parametrize('pad', [False, True])
def test_bf16_autocast_large_logits(pad, monkeypatch):
    """An IPSA whose q.k^T is 300 on the diagonal and 0 elsewhere, plus a
    relative-position bias of 7e4 everywhere: exp(300) overflows in bf16 (and
    fp32), 7e4 in fp16, so a softmax without max-subtraction, or a bias or
    logits cast to fp16, gives inf/NaN; the real kernel returns each token's
    own value, as in fp32."""
    monkeypatch.setattr(sdpa, 'needs_head_padding', lambda q: pad)
    dims, alpha = 60, 150 ** 0.5   # head dim 60 (unaligned): q = k = alpha*x
    ipsa = InnerPatchAttention(embed_dims=dims, num_heads=1).eval()
    eye = torch.eye(dims)
    with torch.no_grad():
        ipsa.qkv.weight.copy_(torch.cat([alpha * eye, alpha * eye, eye]))
        ipsa.qkv.bias.zero_()
        ipsa.proj.weight.copy_(eye)
        ipsa.proj.bias.zero_()
        ipsa.relative_position_bias_table.fill_(7e4)
    norm = (300 / (alpha ** 2 * dims ** -0.5)) ** 0.5  # |x|^2 a^2 scale=300
    tokens = _orthogonal_patches(2, dims, norm, seed=3)
    x = tokens.view(2, 7, 7, dims).permute(1, 0, 2, 3).reshape(1, 7, 14, dims)
    logits = (alpha * tokens[:49]) @ (alpha * tokens[:49]).T * dims ** -0.5
    assert logits.diagonal().min() > 299 and logits.diagonal().max() < 301
    # the teeth: the naive computations this case rules out break down
    assert not torch.isfinite(logits.bfloat16().exp()).all()
    assert not torch.isfinite(torch.tensor(7e4).half())
    with torch.no_grad():
        ref = ipsa(x)
        with torch.autocast('cpu', torch.bfloat16):
            out = ipsa(x)
    torch.testing.assert_close(ref, x, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)


def test_mask_is_cast_to_the_query_dtype(device):
    """A float32 bias with half-precision q, k, v is cast (the fused CUDA
    kernels take no other dtype) and gives the result of a bias in q's
    dtype."""
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(3, 2, 49, 12, generator=g).to(device,
                                                         torch.bfloat16)
               for _ in range(3))
    bias = torch.randn(1, 2, 49, 49, generator=g).to(device)
    out = sdpa.scaled_dot_product_attention(q, k, v, bias)
    want = F.scaled_dot_product_attention(q, k, v,
                                          attn_mask=bias.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, want, atol=3e-2, rtol=3e-2)
