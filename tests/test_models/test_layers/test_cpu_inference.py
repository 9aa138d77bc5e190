"""The CPU inference kernels give the layers' plain results, and the gate
sends everything else to the plain path."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmcat.models import CAT, CPUInferencePolicy, plain_forward
from mmcat.models.layers import (AttentionBlock, CrossPatchAttention,
                                 InnerPatchAttention)
from mmcat.models.layers import cpu_inference as kernels


def _modules(act='GELU'):
    torch.manual_seed(0)
    return {
        'ipsa': InnerPatchAttention(32, num_heads=2, patch_size=7),
        'cpsa': CrossPatchAttention(patch_size=7),
        'block': AttentionBlock(32, CrossPatchAttention(patch_size=7),
                                act_cfg=dict(type=act), drop_rate=0.5),
    }


_KERNELS = {'ipsa': kernels.ipsa_forward, 'cpsa': kernels.cpsa_forward,
            'block': kernels.attention_block_forward}


def _policy(chunk_bytes: int) -> CPUInferencePolicy:
    return CPUInferencePolicy(chunk_bytes=chunk_bytes, min_split_bytes=0)


@pytest.mark.parametrize('name', ['ipsa', 'cpsa', 'block'])
@pytest.mark.parametrize('budget', [1, 5000, 1 << 30])
def test_chunked_inference_matches_the_plain_path(name, budget):
    """Chunks of one sequence/token, of a few, and one chunk for all; at a
    size that needs padding, batch 2."""
    module = _modules()[name].eval()
    x = torch.randn(2, 23, 30, 32)
    plain = module(x)                     # autograd on: the plain path
    assert plain.requires_grad
    with torch.no_grad():
        fast = _KERNELS[name](module, x, _policy(budget))
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
    with torch.no_grad():
        fast = kernels.ipsa_forward(module, x, _policy(budget))
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
    out = kernels.attend_per_head(qkv, 0.3, mask)
    torch.testing.assert_close(
        out, expected.transpose(1, 2).reshape(s, l, heads * hd))


def test_cpsa_inference_over_many_patches_matches_the_plain_path():
    """More patches than the per-head path takes (SDPA on CPU inference)."""
    policy = CPUInferencePolicy()
    assert (84 // 7) * (98 // 7) > policy.max_bmm_tokens
    module = CrossPatchAttention(patch_size=7).eval()
    x = torch.randn(1, 84, 98, 3)
    plain = module(x)
    with torch.no_grad():
        fast = kernels.cpsa_forward(module, x, policy)
    torch.testing.assert_close(fast, plain.detach(), atol=1e-5, rtol=1e-5)


def test_channel_partition_by_rows_equals_the_plain_partition():
    from mmcat.models.layers.patch_partition import channel_patch_partition
    x = torch.randn(2, 21, 28, 6)
    assert torch.equal(kernels.channel_patch_partition_by_rows(x, 7),
                       channel_patch_partition(x, 7))


def test_block_kernel_leaves_its_input_alone():
    module = _modules()['block'].eval()
    x = torch.randn(1, 14, 14, 32)
    before = x.clone()
    with torch.no_grad():
        kernels.attention_block_forward(module, x, _policy(100))
    assert torch.equal(x, before)


def _tiny_cat(**kwargs) -> CAT:
    return CAT(arch=dict(embed_dims=8, depths=(1, ), num_heads=(1, )),
               out_indices=(0, ), **kwargs)


def test_gate_only_for_cpu_inference():
    model = _tiny_cat()
    x = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        assert kernels.policy_for(model, x) is None       # training mode
        model.eval()
        assert kernels.policy_for(model, x) is model.cpu_inference
        with plain_forward(model):                        # asked for plain
            assert kernels.policy_for(model, x) is None
        assert kernels.policy_for(model, x) is model.cpu_inference
        assert kernels.policy_for(model, x.to('meta')) is None  # not CPU
    assert kernels.policy_for(model, x) is None           # autograd records
    off = _tiny_cat(cpu_inference=False).eval()
    with torch.no_grad():
        assert kernels.policy_for(off, x) is None


def test_gate_is_off_under_tracing():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(kernels.policy_for(model, x))
            return x + 1

    model = _tiny_cat().eval()
    with torch.no_grad():
        torch.jit.trace(Probe(), torch.randn(1, 3, 7, 7), check_trace=False)
    assert seen == [None]


@pytest.mark.parametrize('hw', [(61, 90), (33, 47)])
def test_cat_kernels_equal_its_plain_forward(hw):
    """The whole backbone, chunked as finely as the policy allows."""
    torch.manual_seed(0)
    model = CAT(arch='tiny', cpu_inference=dict(chunk_bytes=4096,
                                                min_split_bytes=0)).eval()
    model.init_weights()
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        fast = model(x)
        with plain_forward(model):
            plain = model(x)
    for a, b in zip(fast, plain):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_policy_chunking_and_checks():
    policy = CPUInferencePolicy(chunk_bytes=123, min_split_bytes=1000)
    assert policy.rows_per_chunk(50, rows=20) == 20   # 1000 B: whole
    assert policy.rows_per_chunk(50, rows=21) == 2
    assert policy.rows_per_chunk(1000, rows=7) == 1
    with pytest.raises(ValueError, match='chunk_bytes'):
        CPUInferencePolicy(chunk_bytes=0)
    with pytest.raises(Exception):                    # frozen
        policy.chunk_bytes = 1


@pytest.mark.parametrize('bias', [True, False])
def test_linear_matches_the_plain_layer(bias):
    """On a non-contiguous 3-D input, with and without bias."""
    torch.manual_seed(0)
    layer = nn.Linear(24, 40, bias=bias)
    x = torch.randn(3, 10, 48)[..., ::2]
    plain = layer(x)
    with torch.no_grad():
        fast = kernels.linear(layer, x)
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
        fast = kernels.linear(layer, x)
    assert fast.dtype == plain.dtype == torch.bfloat16
    torch.testing.assert_close(fast.float(), plain.float(), atol=0.05,
                               rtol=0.02)


@pytest.mark.parametrize('act', ['GELU', 'ReLU'])
def test_block_mlp_kernel_matches_the_plain_path(act):
    """The chunked MLP residual with either activation, dropout in the
    config (off in eval)."""
    module = _modules(act)['block'].eval()
    x = torch.randn(2, 5, 9, 32)
    plain = module(x)                                   # autograd on
    with torch.no_grad():
        fast = kernels.attention_block_forward(module, x, _policy(64))
    torch.testing.assert_close(fast, plain.detach(), atol=1e-5, rtol=1e-5)
