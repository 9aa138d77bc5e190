"""CPSA's numbers against an attention written out in the test: one head (the
paper) and several (the paper's Table 5 ablation), on the plain path and on
the CPU inference kernel."""
import pytest
import torch

from mmcat.models import CAT, CPUInferencePolicy
from mmcat.models.layers import CrossPatchAttention
from mmcat.models.layers import cpu_inference as kernels


def _written_out_cpsa(attn: CrossPatchAttention,
                      x: torch.Tensor) -> torch.Tensor:
    """CPSA by its definition, patch by patch and channel by channel.

    x: (B, H, W, C). Each channel is zero-padded to multiples of N and cut
    into N x N patches; a patch's values (row-major) are one token of N*N
    dimensions; the tokens of one channel attend to each other with heads
    splitting the N*N dimensions, and the result goes back where it came
    from. Returns (B, H, W, C).
    """
    n, heads = attn.patch_size, attn.num_heads
    b, h, w, c = x.shape
    hp, wp = -(-h // n) * n, -(-w // n) * n
    padded = x.new_zeros(b, hp, wp, c)
    padded[:, :h, :w] = x
    out = torch.empty_like(padded)
    corners = [(i, j) for i in range(0, hp, n) for j in range(0, wp, n)]
    dims = n * n
    hd = dims // heads
    w_qkv, b_qkv = attn.qkv.weight, attn.qkv.bias
    w_out, b_out = attn.proj.weight, attn.proj.bias
    for image in range(b):
        for ch in range(c):
            tokens = torch.stack([padded[image, i:i + n, j:j + n, ch].reshape(
                dims) for i, j in corners])                    # P, N*N
            qkv = tokens @ w_qkv.T + b_qkv
            q, k, v = qkv[:, :dims], qkv[:, dims:2 * dims], qkv[:, 2 * dims:]
            mixed = []
            for head in range(heads):
                part = slice(head * hd, (head + 1) * hd)
                scores = q[:, part] @ k[:, part].T * attn.scale
                mixed.append(scores.softmax(dim=-1) @ v[:, part])
            result = torch.cat(mixed, dim=1) @ w_out.T + b_out
            for (i, j), token in zip(corners, result):
                out[image, i:i + n, j:j + n, ch] = token.view(n, n)
    return out[:, :h, :w]


def _cpsa(num_heads: int) -> CrossPatchAttention:
    torch.manual_seed(num_heads)
    attn = CrossPatchAttention(patch_size=7, num_heads=num_heads).eval()
    with torch.no_grad():   # biases too, so that every term counts
        for p in attn.parameters():
            p.normal_(0, 0.3)
    return attn


@pytest.mark.parametrize('num_heads', [1, 7])
def test_cpsa_computes_its_definition(num_heads):
    """Batch 2, a size that needs padding (17x23 -> 21x28: 12 patches)."""
    attn = _cpsa(num_heads)
    x = torch.randn(2, 17, 23, 3)
    expected = _written_out_cpsa(attn, x)
    plain = attn(x)
    assert plain.requires_grad                   # autograd on: plain path
    torch.testing.assert_close(plain.detach(), expected, atol=1e-5,
                               rtol=1e-5)
    with torch.no_grad():
        fast = kernels.cpsa_forward(attn, x, CPUInferencePolicy())
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)


def test_heads_change_the_result():
    """The control of the test above: with the same weights, 7 heads and 1
    head give other numbers, so a CPSA that ignored its heads would fail it."""
    attn = _cpsa(7)
    x = torch.randn(1, 14, 14, 2)
    one_head = CrossPatchAttention(patch_size=7, num_heads=1).eval()
    one_head.load_state_dict(attn.state_dict())
    with torch.no_grad():
        assert not torch.allclose(attn(x), one_head(x), atol=1e-3)


def test_cat_passes_cpsa_num_heads_to_every_cpsa():
    model = CAT(arch=dict(embed_dims=8, depths=(1, 2), num_heads=(1, 2)),
                out_indices=(0, 1), cpsa_num_heads=7)
    cpsa = [m for m in model.modules() if isinstance(m, CrossPatchAttention)]
    assert len(cpsa) == 3 and all(m.num_heads == 7 for m in cpsa)
    assert all(m.scale == 7 ** -0.5 for m in cpsa)
