"""The CPU inference fast paths give the plain paths' results."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import mmcat  # noqa: F401
from mmcat.models.layers import (AttentionBlock, CrossPatchAttention,
                                 InnerPatchAttention)
from mmcat.models.layers import fast_path
from mmcat.models.layers.attention import _MAX_BMM_TOKENS, _attend_per_head
from mmcat.models.layers.mlp import Mlp


def _modules():
    torch.manual_seed(0)
    return {
        'ipsa': InnerPatchAttention(32, num_heads=2, patch_size=7),
        'cpsa': CrossPatchAttention(patch_size=7),
        'block': AttentionBlock(32, CrossPatchAttention(patch_size=7)),
    }


@pytest.mark.parametrize('name', ['ipsa', 'cpsa', 'block'])
@pytest.mark.parametrize('budget', [1, 5000, 1 << 30])
def test_chunked_inference_matches_the_plain_path(name, budget):
    """Chunks of one sequence/token, of a few, and one chunk for all; at a
    size that needs padding, batch 2."""
    module = _modules()[name].eval()
    x = torch.randn(2, 23, 30, 32)
    plain = module(x)                     # autograd on: the plain path
    assert plain.requires_grad
    with torch.no_grad(), fast_path.chunk_budget(budget, min_split_bytes=0):
        fast = module(x)
    torch.testing.assert_close(fast, plain.detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('rows_per_band', [1, 2, 3])
def test_ipsa_bands_of_patch_rows_match_the_plain_path(rows_per_band):
    """IPSA's CPU inference over bands of patch rows: 23 rows are 4 patch
    rows (the last one padded), split 1+1+1+1, 2+2 and 3+1; batch 2."""
    module = _modules()['ipsa'].eval()
    x = torch.randn(2, 23, 30, 32)
    plain = module(x)
    per_patch = 3 * 49 * 32 * 4                       # q, k, v bytes
    budget = rows_per_band * 2 * 5 * per_patch        # batch x patch columns
    with torch.no_grad(), fast_path.chunk_budget(budget, min_split_bytes=0):
        fast = module(x)
    torch.testing.assert_close(fast, plain.detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('heads,bias', [(1, False), (4, True), (4, False)])
def test_per_head_attention_equals_sdpa(heads, bias):
    """The head-by-head batched products that CPU inference takes for short
    sequences give SDPA's result, with and without IPSA's bias."""
    torch.manual_seed(0)
    s, l, hd = 5, 49, 8
    qkv = torch.randn(s, l, 3, heads, hd)
    mask = torch.randn(1, heads, l, l) if bias else None
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                              scale=0.3)
    out = _attend_per_head(qkv, 0.3, mask)
    torch.testing.assert_close(
        out, expected.transpose(1, 2).reshape(s, l, heads * hd))


def test_cpsa_inference_over_many_patches_matches_the_plain_path():
    """More patches than the per-head path takes (SDPA on CPU inference)."""
    assert (84 // 7) * (98 // 7) > _MAX_BMM_TOKENS
    module = CrossPatchAttention(patch_size=7).eval()
    x = torch.randn(1, 84, 98, 3)
    plain = module(x)
    with torch.no_grad():
        fast = module(x)
    torch.testing.assert_close(fast, plain.detach(), atol=1e-5, rtol=1e-5)


def test_block_fast_path_leaves_its_input_alone():
    module = _modules()['block'].eval()
    x = torch.randn(1, 14, 14, 32)
    before = x.clone()
    with torch.no_grad(), fast_path.chunk_budget(100, min_split_bytes=0):
        module(x)
    assert torch.equal(x, before)


def test_fast_path_only_for_cpu_inference():
    module = _modules()['ipsa']
    x = torch.randn(1, 7, 7, 32)
    with torch.no_grad():
        assert not fast_path.cpu_inference(module, x)     # training mode
        module.eval()
        assert fast_path.cpu_inference(module, x)
    assert not fast_path.cpu_inference(module, x)         # autograd records


def test_chunk_budget_is_restored_and_checked():
    before = fast_path.chunk_bytes()
    with fast_path.chunk_budget(123, min_split_bytes=1000):
        assert fast_path.chunk_bytes() == 123
        assert fast_path.rows_per_chunk(50, rows=20) == 20   # 1000 B: whole
        assert fast_path.rows_per_chunk(50, rows=21) == 2
        assert fast_path.rows_per_chunk(1000, rows=7) == 1
    assert fast_path.chunk_bytes() == before
    with pytest.raises(ValueError, match='chunk budget'):
        with fast_path.chunk_budget(0):
            pass


@pytest.mark.parametrize('bias', [True, False])
def test_linear_matches_the_plain_layer(bias):
    """On a non-contiguous 3-D input, with and without bias."""
    torch.manual_seed(0)
    layer = nn.Linear(24, 40, bias=bias)
    x = torch.randn(3, 10, 48)[..., ::2]
    plain = layer(x)
    with torch.no_grad():
        fast = fast_path.linear(layer, x)
    assert fast.shape == (3, 10, 40)
    torch.testing.assert_close(fast, plain.detach(), atol=1e-5, rtol=1e-5)


def test_linear_under_bf16_autocast_runs_on_any_cpu():
    """bf16 autocast gives autocast's dtype and values, whether or not this
    CPU has oneDNN bf16 kernels (AVX2-only CPUs have none)."""
    torch.manual_seed(0)
    layer = nn.Linear(32, 64)
    x = torch.randn(4, 32)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        plain = layer(x)
        fast = fast_path.linear(layer, x)
    assert fast.dtype == plain.dtype == torch.bfloat16
    torch.testing.assert_close(fast.float(), plain.float(), atol=0.05,
                               rtol=0.02)


@pytest.mark.parametrize('act', ['GELU', 'ReLU'])
def test_mlp_inference_matches_the_plain_path(act):
    torch.manual_seed(0)
    mlp = Mlp(16, 64, act_cfg=dict(type=act), drop_rate=0.5).eval()
    x = torch.randn(2, 5, 16)
    plain = mlp(x)                                      # autograd on
    with torch.no_grad():
        assert fast_path.cpu_inference(mlp, x)
        fast = mlp(x)
    torch.testing.assert_close(fast, plain.detach(), atol=1e-5, rtol=1e-5)
