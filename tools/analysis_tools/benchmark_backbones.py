"""Benchmark CAT-T/S/B (mmcat) against the paper's straightforward
transcription, MMDetection's Swin-T and ResNet-50: latency of a forward and a
training step, peak memory, multiply-adds, achieved rate against the
machine's GEMM rate, and CAT/reference output agreement, in one run.

    python tools/analysis_tools/benchmark_backbones.py --out work_dirs/bench
    python tools/analysis_tools/benchmark_backbones.py --quick
    python tools/analysis_tools/benchmark_backbones.py --models cat_s,ref_s \
        --sizes 800x1344 --batch 2 --no-timing --out work_dirs/bench_b2
    python tools/analysis_tools/benchmark_backbones.py \
        --from-json work_dirs/bench.json          # re-render a saved run

Models: cat_t, cat_s, cat_b (mmcat; cat_t_cp, cat_s_cp, cat_b_cp: the same
with gradient checkpointing, with_cp=True; _ffncp: ffn_with_cp=True,
_keepact: act_with_cp=False), ref_t, ref_s, ref_b (the reference of
the tests: plain softmax attention, the authors' layout; same weights as the
CATs), swin_t, r50. Timed calls are interleaved round-robin over all models
and dtypes, so take ratios from one run. See mmcat/analysis/backbone_bench/
for how each number is measured, and docs/benchmark.md for a measured table.
"""
import argparse
import json
import os
import shlex
import sys
from typing import List, Optional, Sequence

WAIT_POLICIES = ('passive', 'active', 'env')


def set_omp_wait_policy(argv: Optional[Sequence[str]] = None) -> str:
    """Apply ``--omp-wait-policy`` to the environment before torch loads
    OpenMP (it reads OMP_WAIT_POLICY once, at load time); returns the
    policy in force for this process and the memory workers."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--omp-wait-policy', choices=WAIT_POLICIES,
                     default='passive')
    known, _ = pre.parse_known_args(argv)
    if known.omp_wait_policy != 'env':
        os.environ['OMP_WAIT_POLICY'] = known.omp_wait_policy.upper()
    return os.environ.get('OMP_WAIT_POLICY', 'unset (runtime default)')


if __name__ == '__main__':
    set_omp_wait_policy()

import torch  # noqa: E402  (after the OpenMP policy is set)

from mmcat.analysis.backbone_bench import (  # noqa: E402
    DEFAULT_MODELS, MALLOC_MODES, MODEL_NAMES, BenchConfig, bf16_supported,
    canonical_model_name, parse_size, retain_freed_memory, run_benchmark,
    to_markdown)


def _csv(text: str) -> List[str]:
    return [t.strip() for t in text.split(',') if t.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('--models', default=','.join(DEFAULT_MODELS),
                        help='comma-separated subset of: '
                        + ', '.join(MODEL_NAMES))
    parser.add_argument('--sizes', default='224x224,512x512,800x1344',
                        help='comma-separated HxW input sizes')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2,
                        help='torch CPU threads (also in memory workers)')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed rounds (medians are reported)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed rounds first')
    parser.add_argument('--dtypes', default='fp32,bf16',
                        help='fp32 and/or autocast dtypes (bf16; fp16 on '
                        'CUDA); bf16 is skipped where not native')
    parser.add_argument('--train', dest='train', action='store_true',
                        default=True, help='also a training step (default)')
    parser.add_argument('--no-train', dest='train', action='store_false')
    parser.add_argument('--no-memory', dest='memory', action='store_false',
                        help='skip the peak-memory workers')
    parser.add_argument('--no-timing', dest='timing', action='store_false',
                        help='skip latency (e.g. memory only)')
    parser.add_argument('--no-flops', dest='flops', action='store_false',
                        help='skip counting multiply-adds')
    parser.add_argument('--gemm-size', type=int, default=4096,
                        help='n of the n x n x n GEMM giving the peak rate')
    parser.add_argument('--mem-limit-gb', type=float, default=16.,
                        help='kill a memory worker above this RSS (also '
                        'capped at available memory - 1 GiB)')
    parser.add_argument('--device', default='cpu',
                        help='cpu or cuda[:i]')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--omp-wait-policy', choices=WAIT_POLICIES,
                        default='passive',
                        help='OpenMP threads waiting at a barrier sleep '
                        '(passive, default) or spin (active); env: leave '
                        'OMP_WAIT_POLICY as it is. On a shared CPU, spinning '
                        'threads descheduled by other processes make small '
                        'ops wait whole scheduler slices (docs/benchmark.md); '
                        'on a dedicated machine active can be a little '
                        'faster')
    parser.add_argument('--malloc', choices=MALLOC_MODES, default='default',
                        help='default: glibc as it comes (large blocks are '
                        'mmapped and returned on free, so big temporaries '
                        'page-fault on every call); retain: glibc keeps '
                        'freed memory for reuse, as jemalloc/tcmalloc do '
                        '(what a tuned CPU deployment sees)')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: 64x64, cat_t + ref_t, 2 rounds, '
                        '256^3 GEMM (explicit --models/--sizes still win)')
    parser.add_argument('--from-json', default=None, metavar='JSON',
                        help='measure nothing: render the table of a saved '
                        'run (its own command is kept)')
    parser.add_argument('--out', default=None,
                        help='write OUT.json and OUT.md (a .json or .md '
                        'suffix is dropped first)')
    args = parser.parse_args(argv)
    if args.quick:
        given = set(a.split('=')[0] for a in (argv if argv is not None
                                              else sys.argv[1:]))
        if '--models' not in given:
            args.models = 'cat_t,ref_t'
        if '--sizes' not in given:
            args.sizes = '64x64'
        if '--repeats' not in given:
            args.repeats = 2
        if '--gemm-size' not in given:
            args.gemm_size = 256
    return args


def main(argv=None) -> int:
    policy = set_omp_wait_policy(argv)
    args = parse_args(argv)
    malloc = 'glibc default'
    if args.malloc == 'retain' and not args.from_json:
        try:
            malloc = 'glibc, freed memory retained (' + \
                retain_freed_memory() + ')'
        except RuntimeError as err:
            print(f'error: {err}', file=sys.stderr)
            return 2
    device = args.device
    if device.startswith('cuda') and not torch.cuda.is_available():
        print('CUDA is not available', file=sys.stderr)
        return 2
    cfg = BenchConfig(
        models=[canonical_model_name(m) for m in _csv(args.models)],
        sizes=[parse_size(s) for s in _csv(args.sizes)],
        batch=args.batch, threads=args.threads, repeats=args.repeats,
        warmup=args.warmup, dtypes=_csv(args.dtypes), train=args.train,
        timing=args.timing, memory=args.memory, flops=args.flops,
        gemm_size=args.gemm_size, mem_limit_gb=args.mem_limit_gb,
        seed=args.seed, device=device)
    if 'bf16' in cfg.dtypes and not bf16_supported(device) and \
            not args.from_json:
        print('note: bf16 is not native here; measuring fp32 only',
              file=sys.stderr)
    if args.from_json:
        with open(args.from_json) as f:
            result = json.load(f)
        command = result.get('command')
    else:
        result = run_benchmark(cfg)
        command = 'python ' + ' '.join(
            shlex.quote(a) for a in [os.path.relpath(__file__)] +
            (argv if argv is not None else sys.argv[1:]))
        result['command'] = command
        result['machine']['omp_wait_policy'] = policy
        result['machine']['malloc'] = malloc
    text = to_markdown(result, command)
    print(text)
    if args.out:
        stem = args.out
        for suffix in ('.json', '.md'):
            if stem.endswith(suffix):
                stem = stem[:-len(suffix)]
        os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
        with open(stem + '.json', 'w') as f:
            json.dump(result, f, indent=1)
        with open(stem + '.md', 'w') as f:
            f.write(text)
        print(f'wrote {stem}.json and {stem}.md', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
