"""The SDPA backend report: every IPSA and CPSA layer of a CAT named once, in
order, with the tensors it really passes (padded heads included) and the
kernel PyTorch's own selection gives them; identical calls of a stage share a
row; on CUDA every call reaches a fused kernel."""
from typing import List

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from mmcat.analysis.sdpa_backends import (NO_CALL, AttentionCall, RunSpec,
                                          build_cat, format_report,
                                          format_table, ruled_out_reason,
                                          run_report, sdpa_backend)
from mmcat.models.layers import (CrossPatchAttention, InnerPatchAttention,
                                 sdpa)

SMALL = dict(model='cat_t', size=(224, 224), batch=1)


def _attention_layers(model: torch.nn.Module) -> List[str]:
    return [name for name, m in model.named_modules()
            if isinstance(m, (InnerPatchAttention, CrossPatchAttention))]


def _expected_shapes(call: AttentionCall, heads: List[int], cpsa_heads: int,
                     channels: List[int], batch: int, pad: int = 0):
    """q's shape for a 224x224 input: stage i has a (56 / 2^i)^2 map, cut
    into 7x7 patches."""
    side = 56 // 2 ** call.stage
    patches = (-(-side // 7)) ** 2
    c = channels[call.stage]
    if call.kind == 'IPSA':
        h = heads[call.stage]
        return (batch * patches, h, 49, c // h + pad)
    return (batch * c, cpsa_heads, patches, 49 // cpsa_heads + pad)


@pytest.mark.parametrize('cpsa_heads', [1, 7])
def test_training_forward_reports_every_layer(cpsa_heads):
    """Autograd on (the plain path): one SDPA call per layer, the layer's
    shapes, IPSA's bias as a mask, CPU kernels as torch picks them."""
    spec = RunSpec(**SMALL, cpsa_num_heads=cpsa_heads, grad=True)
    calls = run_report(spec)
    model = build_cat('cat_t', cpsa_heads)
    assert [c.layer for c in calls] == _attention_layers(model)
    heads, channels = [2, 4, 8, 16], [64, 128, 256, 512]
    for call in calls:
        assert call.shapes[0] == call.shapes[1] == call.shapes[2] == \
            _expected_shapes(call, heads, cpsa_heads, channels, 1), call
        assert call.kind == ('CPSA' if '.cpsa.' in call.layer else 'IPSA')
        h = call.shapes[0][1]
        assert call.mask == ((1, h, 49, 49) if call.kind == 'IPSA'
                             else None)
        assert call.requires_grad and call.dtype == 'fp32'
        # torch 2.13's CPU flash kernel takes any head dimension, but no
        # mask that needs a gradient (IPSA's bias in training)
        assert call.backend == ('math' if call.kind == 'IPSA' else 'flash')


def test_report_sees_padded_shapes(monkeypatch):
    """The calls are those the model makes: with the padding gate on (as on
    a GPU) CPSA passes a head dimension of 56, IPSA keeps its 32."""
    monkeypatch.setattr(sdpa, 'needs_head_padding',
                        lambda q: q.shape[-1] % 8 != 0)
    calls = run_report(RunSpec(**SMALL, grad=True))
    dims = {kind: {c.shapes[0][-1] for c in calls if c.kind == kind}
            for kind in ('IPSA', 'CPSA')}
    assert dims == {'IPSA': {32}, 'CPSA': {56}}


def test_cpu_inference_forward_names_layers_without_calls():
    """Eval and no_grad on the CPU run CAT's CPU-inference kernels: the
    layers attended with per-head matmuls appear with no call, the others
    with theirs (the last stage's single patch goes through SDPA)."""
    calls = run_report(RunSpec(**SMALL, cpsa_num_heads=1))
    layers = _attention_layers(build_cat('cat_t'))
    assert list(dict.fromkeys(c.layer for c in calls)) == layers
    no_call = [c for c in calls if c.choice is None]
    assert no_call and all(c.backend == NO_CALL and not c.shapes
                           for c in no_call)
    last_ipsa = [c for c in calls if c.stage == 3 and c.kind == 'IPSA']
    assert last_ipsa and all(c.shapes and not c.requires_grad
                             for c in last_ipsa)


def test_bf16_autocast_report():
    calls = run_report(RunSpec(**SMALL, dtype='bf16', grad=True))
    assert {c.dtype for c in calls} == {'bf16'}


def test_backend_is_torchs_choice():
    """Disabling kernels changes the reported backend: it is PyTorch's
    selection, not a rule of this module."""
    q = torch.randn(4, 1, 30, 49)
    assert sdpa_backend(q, q, q).backend == 'FLASH_ATTENTION'
    with sdpa_kernel(SDPBackend.MATH):
        assert sdpa_backend(q, q, q).backend == 'MATH'
    assert sdpa_backend(q, q, q).not_eligible == ()   # CPU: no reasons


def test_ruled_out_reason_is_pytorchs_text():
    """The reason is what PyTorch says when only that kernel may run (here
    the CPU's flash kernel, which needs equal head dimensions), without the
    C++ source location; nothing is computed."""
    q, v = torch.randn(2, 1, 10, 49), torch.randn(2, 1, 10, 32)
    why = ruled_out_reason('flash', q, q, v)
    assert why.startswith('Flash attention requires q,k,v to have the same '
                          'last dimension'), why
    assert 'Triggered internally' not in why and '49' in why
    # a refusal PyTorch does not explain: a mask that needs a gradient
    mask = torch.zeros(1, 1, 10, 10, requires_grad=True)
    assert ruled_out_reason('flash', q, q, q, attn_mask=mask) == \
        'not eligible (PyTorch gives no reason)'


def test_table_collapses_identical_calls_per_stage():
    spec = RunSpec(**SMALL, cpsa_num_heads=7, grad=True)
    calls = run_report(spec)
    table = format_table(calls)
    rows = table.splitlines()[2:]
    assert len(rows) == 8    # per stage: one IPSA row, one CPSA row
    stage2 = [r for r in rows if r.startswith('| 2 |')]
    assert any('| blocks.0.pre_ipsa ... blocks.2.post_ipsa (6) | IPSA | '
               '4x8x49x32 | 1x8x49x49 |' in r for r in stage2), stage2
    assert any('| CPSA | 256x7x4x7 |' in r for r in stage2), stage2
    report = format_report(spec, calls)
    assert report.startswith('### cat_t, CPSA heads 7, cpu, fp32, 224x224, '
                             'batch 1, train mode, autograd on')
    assert '18 attention calls: 12 math, 6 flash.' in report


def test_bad_models_and_heads():
    with pytest.raises(ValueError, match='no IPSA/CPSA'):
        build_cat('swin_t')
    with pytest.raises(ValueError, match='unknown model'):
        build_cat('cat_x')
    with pytest.raises(ValueError, match='num_heads'):
        build_cat('cat_t', 5)
    with pytest.raises(ValueError, match='unknown dtype'):
        run_report(RunSpec(**SMALL, dtype='fp8'))


@pytest.mark.parametrize('dtype', ['fp32', 'fp16', 'bf16'])
def test_cuda_every_call_is_fused(dtype, device, monkeypatch):
    """On a GPU the padded heads reach a fused kernel in every layer, in
    inference and training; without the padding fp32 CPSA falls to math,
    for the reason PyTorch gives (in half precision flash attention pads
    the head dimension itself)."""
    if device.type != 'cuda':
        pytest.skip('kernel selection on CUDA')
    for grad in (False, True):
        calls = run_report(RunSpec(**SMALL, device='cuda', dtype=dtype,
                                   grad=grad, cpsa_num_heads=7))
        assert calls and all(c.choice is not None and
                             c.choice.backend != 'MATH' for c in calls), \
            format_table(calls)
    if dtype != 'fp32':
        return
    monkeypatch.setattr(sdpa, 'needs_head_padding', lambda q: False)
    calls = run_report(RunSpec(**SMALL, device='cuda', dtype=dtype,
                               cpsa_num_heads=7))
    cpsa = [c for c in calls if c.kind == 'CPSA']
    assert all(c.choice.backend == 'MATH' for c in cpsa)
    assert all('divisible by' in dict(c.choice.not_eligible).get(
        'memory-efficient', '') for c in cpsa), format_table(cpsa)


def test_chunked_cpu_inference_calls_are_counted():
    """CPU inference cut into chunks: one layer makes several calls, all
    named after it, covering all its sequences; the table counts them."""
    from mmcat.models import CAT
    model = CAT(arch='tiny', cpu_inference=dict(
        chunk_bytes=256 * 1024, min_split_bytes=1, max_bmm_tokens=0))
    calls = run_report(RunSpec(**SMALL), model)
    assert list(dict.fromkeys(c.layer for c in calls)) == \
        _attention_layers(model)
    first_cpsa = [c for c in calls if c.layer == 'stages.0.blocks.0.cpsa.attn']
    assert len(first_cpsa) > 1
    assert sum(c.shapes[0][0] for c in first_cpsa) == 64   # B * C sequences
    rows = [r for r in format_table(calls).splitlines()
            if r.startswith('| 0 | blocks.0.cpsa, ')]
    assert rows and rows[0].split(' | ')[1].endswith(' calls'), rows
