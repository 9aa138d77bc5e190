"""The backbone benchmark: the tool end to end, its parts, and the two
runtime properties it reports on: bf16 autocast and torch.compile."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmcat.models.backbones.cat import CAT
from mmcat.analysis import backbone_bench as bb

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_backbones.py')


# ------------------------------------------------------------- end to end


def test_quick_run_writes_the_full_table(tmp_path):
    """``--quick``: CAT-T and its reference at 64x64, every measurement
    (memory workers included), one command, JSON + Markdown out."""
    stem = tmp_path / 'bench'
    env = dict(os.environ)
    env.pop('OMP_WAIT_POLICY', None)
    proc = subprocess.run(
        [sys.executable, TOOL, '--quick', '--out', str(stem)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / 'bench.md').read_text()
    result = json.loads((tmp_path / 'bench.json').read_text())

    header = next(line for line in md.splitlines()
                  if line.startswith('| size |'))
    for name, _ in bb.COLUMNS:
        if name == 'autocast speed-up' and not bb.bf16_supported():
            continue
        assert f'| {name} |' in header + ' |', name
    assert result['machine']['omp_wait_policy'] == 'PASSIVE'
    assert result['machine']['malloc'] == 'glibc default'
    assert '- allocator: glibc default' in md
    assert 'fp32' in result['gemm'] and result['gemm']['fp32']['calls'] > 0

    dtypes = ['fp32'] + (['bf16'] if bb.bf16_supported() else [])
    rows = {(r.dtype, r.model): r for r in bb.rows_from_result(result)}
    assert set(rows) == {(d, m) for d in dtypes for m in ('cat_t', 'ref_t')}
    for row in rows.values():
        assert row.size == (64, 64) and row.macs > 0 and row.params > 0
        for mode in bb.MODES:
            assert len(row.times[mode]) == 2          # --quick: 2 rounds
            assert len(row.cpu_times[mode]) == 2
            mem = row.memory[mode]
            assert mem['error'] is None and mem['exact']
            assert mem['peak_bytes'] > 0
    # CAT-T and the reference count the same multiply-adds (to 1%)
    assert rows[('fp32', 'cat_t')].macs == pytest.approx(
        rows[('fp32', 'ref_t')].macs, rel=0.01)
    # the tool compares CAT with its reference and reports it
    assert rows[('fp32', 'cat_t')].max_abs_diff <= 1e-4
    headers = [c.strip() for c in header.strip('|').split('|')]
    for model in ('CAT-T (mmcat)', 'CAT-T (reference)'):
        line = next(x for x in md.splitlines()
                    if x.startswith(f'| 64x64 | fp32 | {model} |'))
        cells = dict(zip(headers,
                         (c.strip() for c in line.strip('|').split('|'))))
        empty = {h for h, c in cells.items() if c == '-'}
        allowed = {'autocast speed-up'}                # fp32 rows
        if 'reference' in model:
            allowed.add('max abs diff vs ref')
        assert empty <= allowed, (model, empty)


# ------------------------------------------------------------------ parts


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='glibc mallopt')
def test_malloc_retain_stops_page_faults_on_reused_blocks():
    """``--malloc retain``: a freed 64 MB block is reused instead of being
    unmapped and faulted in again (16,384 pages each time by default); the
    memory workers get the same settings through the environment."""
    code = (
        'import os, resource, torch\n'
        'from mmcat.analysis.backbone_bench import retain_freed_memory\n'
        'def faults():\n'
        '    for _ in range(3):\n'
        '        torch.ones(16 << 20)\n'
        '    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n'
        '    for _ in range(3):\n'
        '        torch.ones(16 << 20)\n'
        '    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0\n'
        'before = faults()\n'
        'note = retain_freed_memory()\n'
        'after = faults()\n'
        'print(before, after, os.environ["MALLOC_TRIM_THRESHOLD_"])\n')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, after, trim = proc.stdout.split()
    assert int(before) > 3 * 10000      # three blocks faulted in anew
    assert int(after) < 1000            # reused
    assert int(trim) > 1 << 30




def test_names_sizes_and_references():
    assert bb.canonical_model_name('CAT-S') == 'cat_s'
    assert bb.canonical_model_name('swin') == 'swin_t'
    assert bb.canonical_model_name('ResNet50') == 'r50'
    with pytest.raises(ValueError, match='unknown model'):
        bb.canonical_model_name('vit_b')
    assert bb.parse_size('800x1344') == (800, 1344)
    assert bb.parse_size('224') == (224, 224)
    with pytest.raises(ValueError):
        bb.parse_size('800x')
    assert bb.reference_of('cat_b') == 'ref_b'
    assert bb.reference_of('ref_s') == 'ref_s'
    assert bb.reference_of('r50') is None


def test_round_robin_interleaves_and_rotates():
    calls = []
    fns = {k: (lambda k=k: calls.append(k)) for k in 'abc'}
    timings = bb.time_round_robin(fns, repeats=2, warmup=1)
    assert calls == list('abc' 'bca' 'cab')
    assert all(len(t.times) == 2 for t in timings.values())
    with pytest.raises(ValueError):
        bb.time_round_robin(fns, repeats=0)


def test_ratios_pair_calls_of_the_same_round():
    # per-round ratios 2, 1, 2 -> 2; the ratio of medians would be 4/3
    assert bb.paired_ratio([2., 4., 6.], [1., 4., 3.]) == pytest.approx(2.)
    assert bb.paired_ratio([2., 4.], [1., 2., 3.]) == pytest.approx(1.5)
    assert bb.paired_ratio([], [1.]) is None


def test_step_memory_sees_torch_allocations():
    """A step holding 64 MiB of torch tensors at once peaks at >= 64 MiB,
    and a repeat of a smaller step is not hidden by the earlier peak."""
    def big():
        a = torch.ones(16 * 2**20)         # 64 MiB
        b = a + 1                          # another 64 MiB
        return float(b[0])

    def small():
        return float(torch.ones(2 * 2**20).sum())    # 8 MiB

    got = bb.measure_step_memory(big, warmup=1)
    if not got['exact']:
        pytest.skip('the peak-RSS mark cannot be reset here')
    assert 120 * 2**20 <= got['peak_bytes'] <= 200 * 2**20
    small_got = bb.measure_step_memory(small, warmup=1)
    assert 6 * 2**20 <= small_got['peak_bytes'] <= 40 * 2**20


def test_memory_worker_is_killed_over_the_limit():
    got = bb.measure_memory('cat_t', (32, 32), 1, [('fp32', 'fwd')],
                            threads=1, limit_bytes=30 * 2**20)
    res = got[('fp32', 'fwd')]
    assert res['over_limit'] and res['peak_bytes'] is None
    assert 'limit' in res['error']


def test_markdown_from_a_result():
    size = [800, 1344]

    def row(model, dtype, fwd, train, mem, diff=None):
        return dict(size=size, dtype=dtype, model=model, params=36_000_000,
                    macs=int(100e9), times=dict(fwd=[fwd], train=[train]),
                    memory=dict(fwd=dict(peak_bytes=2**30, exact=True),
                                train=dict(peak_bytes=mem, exact=True)),
                    max_abs_diff=diff, skipped={})

    result = dict(
        config=dict(batch=2, warmup=1, repeats=1, train=True),
        machine=dict(cpu='test CPU', logical_cpus=2, threads=2,
                     torch='x', python='y'),
        gemm=dict(fp32=dict(n=64, calls=1, median_s=1., best_s=1.,
                            median_gmacs=50., best_gmacs=60.),
                  bf16=dict(n=64, calls=1, median_s=1., best_s=1.,
                            median_gmacs=200., best_gmacs=220.)),
        rows=[row('cat_s', 'fp32', 5., 20., 2 * 2**30, 3e-6),
              row('ref_s', 'fp32', 10., 30., 6 * 2**30),
              row('cat_s', 'bf16', 2.5, 10., 2**30, 5e-2),
              row('ref_s', 'bf16', 6., 20., 3 * 2**30)])
    md = bb.to_markdown(result, 'python tool.py')
    line = next(x for x in md.splitlines()
                if x.startswith('| 800x1344 | fp32 | CAT-S (mmcat)'))
    header = next(x for x in md.splitlines() if x.startswith('| size |'))
    headers = [c.strip() for c in header.strip('|').split('|')]
    got = dict(zip(headers,
                   (c.strip() for c in line.strip('|').split('|'))))
    assert 'fwd CPU x ref' not in got          # no CPU times in this result
    assert got['fwd ms'] == '5000.0' and got['fwd x ref'] == '0.50'
    # against the GEMM peak: the best rate (60), not the median (50)
    assert got['fwd GMAC/s'] == '20.0' and got['fwd % GEMM'] == '33.3'
    assert got['train GMAC/s'] == '15.0'          # 3x forward MACs
    assert got['train mem x ref'] == '0.33'


def test_markdown_names_the_gpu_and_cuda():
    result = dict(config=dict(batch=2, warmup=1, repeats=1, train=False),
                  machine=dict(device='cuda', gpu='NVIDIA H200', cuda='13.0',
                               logical_cpus=16, threads=1, torch='x',
                               python='y'),
                  rows=[])
    md = bb.to_markdown(result)
    assert '- machine: NVIDIA H200 (CUDA 13.0); 16 logical CPUs' in md


# ------------------------------------------------- bf16 and torch.compile


@pytest.mark.skipif(not bb.bf16_supported(), reason='no native bfloat16')
def test_bf16_autocast_inference_is_close_to_fp32():
    """Tolerance: relative L2 error of every output <= 3e-2 and max abs
    difference <= 0.25 (outputs are LayerNorm-ed, O(1)). The error must also
    be non-zero: autocast ran."""
    model = bb.build_backbone('cat_t')
    x = bb.make_input((64, 75), batch=2)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = model(x)
    for r, o in zip(ref, out):
        assert o.shape == r.shape and torch.isfinite(o).all()
        rel = ((o.float() - r).norm() / r.norm()).item()
        assert 1e-4 < rel <= 3e-2
        assert (o.float() - r).abs().max().item() <= 0.25


def test_torch_compile_matches_eager():
    """Inductor compile of a CAT (patch embedding, position encoding, one
    CAB: IPSA -> CPSA -> IPSA with their MLPs, output norm) gives the eager
    outputs to 1e-4.

    A one-stage, 16-channel CAT: inductor builds its C++ kernels with gcc,
    which for the four-stage archs takes several times longer."""
    torch.manual_seed(0)
    model = CAT(arch=dict(embed_dims=16, depths=(1, ), num_heads=(2, )),
                out_indices=(0, ), drop_path_rate=0.).eval()
    x = torch.randn(1, 3, 30, 37)
    with torch.no_grad():
        eager = model(x)
        compiled = torch.compile(model)(x)
    assert len(compiled) == len(eager)
    for c, e in zip(compiled, eager):
        torch.testing.assert_close(c, e, atol=1e-4, rtol=1e-4)


def test_checkpointed_cat_variants():
    """cat_*_cp: the same CAT with gradient checkpointing, against the same
    reference."""
    assert bb.canonical_model_name('CAT-S_cp') == 'cat_s_cp'
    assert bb.reference_of('cat_s_cp') == 'ref_s'
    model = bb.build_backbone('cat_t_cp')
    flags = [m.with_cp for m in model.modules() if hasattr(m, 'with_cp')]
    assert flags and all(flags)
    plain = bb.build_backbone('cat_t')
    # with gradients: under no_grad nothing is checkpointed
    x = torch.randn(1, 3, 64, 64)
    outs, grads = [], []
    for m in (model, plain):
        outs.append(m(x))
        sum(o.square().mean() for o in outs[-1]).backward()
        grads.append([p.grad for p in m.parameters()])
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
