"""Multiply-add counting: the paper's Eq. 1-3 against traced counts."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmcat.models.backbones.cat import CAT
from mmcat.models.layers.attention import (CrossPatchAttention,
                                           InnerPatchAttention)
from mmcat.analysis.flops import (analyze_flops, attention_layer_report,
                               count_flops, cpsa_macs, format_attention_table,
                               ipsa_macs, msa_macs, padded, stage_map_size)


def test_paper_costs_at_56x56():
    """The paper's example: H = W = 56, C = 96, N = 7 gives MSA ~2.0G, IPSA
    ~0.15G, CPSA ~0.1G."""
    assert msa_macs(56, 56, 96) == pytest.approx(2.0e9, rel=0.01)
    assert ipsa_macs(56, 56, 96, 7) == pytest.approx(0.15e9, rel=0.05)
    assert cpsa_macs(56, 56, 96, 7) == pytest.approx(0.1e9, rel=0.05)
    # the closed forms term by term
    assert ipsa_macs(56, 56, 96) == 4 * 3136 * 96**2 + 2 * 49 * 3136 * 96
    assert cpsa_macs(56, 56, 96) == 4 * 49 * 3136 * 96 + 2 * 448**2 * 96


@pytest.mark.parametrize('hw', [(56, 56), (50, 61)])
def test_ipsa_count_equals_eq2(hw):
    h, w = hw
    attn = InnerPatchAttention(96, num_heads=3, patch_size=7).eval()
    report = analyze_flops(attn, (torch.randn(1, h, w, 96), ))
    hp, wp = padded(h, 7), padded(w, 7)
    assert report.total == ipsa_macs(hp, wp, 96, 7)
    # qkv 3HWC^2, proj HWC^2, products 2N^2HWC (on the padded map)
    assert report.by_module['qkv'] == 3 * hp * wp * 96**2
    assert report.by_module['proj'] == hp * wp * 96**2
    assert report.by_operator['scaled_dot_product_attention'] == \
        2 * 49 * hp * wp * 96
    (stat, ) = report.attention
    assert (stat.kind, stat.h, stat.w, stat.c) == ('IPSA', h, w, 96)
    assert (stat.hp, stat.wp) == (hp, wp)
    assert stat.counted == stat.paper and stat.ratio == 1.0


@pytest.mark.parametrize('hw', [(56, 56), (50, 61)])
def test_cpsa_count_equals_eq3(hw):
    h, w = hw
    attn = CrossPatchAttention(patch_size=7).eval()
    report = analyze_flops(attn, (torch.randn(1, h, w, 96), ))
    hp, wp = padded(h, 7), padded(w, 7)
    assert report.total == cpsa_macs(hp, wp, 96, 7)
    patches = (hp // 7) * (wp // 7)
    assert report.by_module['qkv'] == 3 * 49 * hp * wp * 96
    assert report.by_operator['scaled_dot_product_attention'] == \
        2 * patches**2 * 49 * 96
    (stat, ) = report.attention
    assert stat.kind == 'CPSA' and stat.counted == stat.paper


def test_padding_matters():
    """At 50x61 the equations need the padded 56x63, not 50x61."""
    attn = InnerPatchAttention(96, num_heads=3).eval()
    total, _ = count_flops(attn, (torch.randn(1, 50, 61, 96), ))
    assert total == ipsa_macs(56, 63, 96)
    assert total != ipsa_macs(50, 61, 96)


def test_conv_count_matches_formula():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    total, by_module = count_flops(conv, (torch.randn(2, 3, 16, 20), ))
    assert total == 2 * 8 * 3 * 3 * 3 * 16 * 20
    grouped = nn.Conv2d(8, 16, 3, stride=2, groups=4)
    total, _ = count_flops(grouped, (torch.randn(1, 8, 15, 15), ))
    assert total == 16 * (8 // 4) * 9 * 7 * 7


class _SDPA(nn.Module):

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_handle_is_used():
    q = torch.randn(2, 4, 10, 8)
    k = torch.randn(2, 4, 12, 8)
    v = torch.randn(2, 4, 12, 6)
    with_handle = analyze_flops(_SDPA(), (q, k, v))
    without = analyze_flops(_SDPA(), (q, k, v), with_attention=False)
    assert with_handle.total == 2 * 4 * 10 * 12 * (8 + 6)
    assert without.total == 0
    assert 'aten::scaled_dot_product_attention' in without.unsupported
    assert 'aten::scaled_dot_product_attention' not in with_handle.unsupported

    attn = CrossPatchAttention().eval()
    x = (torch.randn(1, 14, 14, 4), )
    assert analyze_flops(attn, x).total > analyze_flops(
        attn, x, with_attention=False).total


class _Scaled(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x, extra=None, mode='loss'):
        assert mode == 'tensor' and extra == 'meta'
        return self.fc(x)


def test_forward_kwargs_are_bound_for_the_trace_only():
    model = _Scaled()
    report = analyze_flops(model, (torch.randn(3, 8), ),
                           forward_kwargs=dict(extra='meta', mode='tensor'))
    assert report.total == 3 * 8 * 4
    assert 'forward' not in vars(model)
    assert all(p.requires_grad for p in model.parameters())


def test_backbone_attention_report():
    """Every IPSA/CPSA layer of a small CAT at an awkward size: the map it
    sees is ceil(H/4/2^i) x ceil(W/4/2^i) and its count is the equation."""
    model = CAT(arch=dict(embed_dims=16, depths=(1, 2), num_heads=(2, 4)),
                out_indices=(0, 1)).eval()
    h, w = 61, 90
    stats = attention_layer_report(model, (h, w))
    assert len(stats) == 3 * (1 + 2)
    assert [s.kind for s in stats[:3]] == ['IPSA', 'CPSA', 'IPSA']
    for s in stats:
        assert (s.h, s.w) == stage_map_size(h, w, s.stage)
        assert s.c == 16 * 2**s.stage
        assert s.counted == s.paper, s.name
        assert s.msa == msa_macs(s.h, s.w, s.c)
    assert stage_map_size(h, w, 1) == (math.ceil(61 / 8), math.ceil(90 / 8))
    table = format_attention_table(stats)
    assert 'stages.1.blocks.1.cpsa.attn' in table
    assert '1.000' in table

    total, by_module = count_flops(model, (torch.randn(1, 3, h, w), ))
    assert total == by_module['']
    assert by_module['stages.0.blocks.0.cpsa.attn'] == stats[1].counted
    assert total > sum(s.counted for s in stats)
