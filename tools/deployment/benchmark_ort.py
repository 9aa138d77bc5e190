"""Latency of a CAT model in PyTorch eager and in onnxruntime, side by side.

    python tools/deployment/benchmark_ort.py CONFIG [--backbone-only] \\
        --shape 800 1344 [--repeats 5] [--threads 2] [--graph-out opt.onnx]

The config's model (random weights unless ``--checkpoint``) is exported to
ONNX as ``export.py`` does (the backbone, or the network up to the raw head
outputs / logits; detection post-processing is in neither) and run on one
random (1, 3, H, W) image, fp32, by:

- ``eager``: the model's default eval forward (on the CPU, CAT's cache-sized
  inference kernels);
- ``eager-plain``: the same under ``mmcat.models.plain_forward`` (the
  forward that is exported);
- ``onnxruntime``: the CPU provider, all graph optimisations on.

Calls are interleaved round-robin (a shared machine's noise hits all alike);
the table gives medians and ratios to ``eager``. The op types of the graph
onnxruntime optimised are counted (how the attention was fused, if at all).
"""
import argparse
import collections
import importlib.util
import os
import os.path as osp
import sys
import tempfile
from typing import Dict, Optional, Sequence

import numpy as np
import torch

HERE = osp.dirname(osp.abspath(__file__))
#: Op types that show what became of the attention.
ATTENTION_OPS = ('Attention', 'MultiHeadAttention', 'MatMul', 'FusedMatMul',
                 'Softmax', 'Gemm', 'FusedGemm', 'MatMulNBits')


def _export_tool():
    spec = importlib.util.spec_from_file_location(
        'mmcat_export_tool', osp.join(HERE, 'export.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--backbone-only', action='store_true')
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1344),
                        metavar=('H', 'W'))
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help='torch and onnxruntime intra-op threads')
    parser.add_argument('--graph-out', default=None,
                        help='keep the graph onnxruntime optimised here')
    return parser.parse_args(argv)


def op_counts(path: str) -> Dict[str, int]:
    """Op type -> number of nodes of an ONNX file."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    return dict(collections.Counter(n.op_type for n in model.graph.node))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if os.environ.get('OMP_WAIT_POLICY', '').upper() != 'PASSIVE':
        print('note: set OMP_WAIT_POLICY=PASSIVE (as make does) for '
              'torch\'s threads to wait as onnxruntime\'s do here')
    import onnxruntime as ort

    from mmcat.analysis.backbone_bench.round_robin import time_round_robin
    from mmcat.models import plain_forward
    export = _export_tool()
    torch.set_num_threads(args.threads)
    _, model = export.build_model(args.config, args.checkpoint)
    kind = export.model_kind(model, args.backbone_only)
    wrapped = export.wrap(model, kind)
    img = torch.randn(1, 3, *args.shape, generator=torch.Generator()
                      .manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'model.onnx')
        example = torch.randn(1, 3, 224, 224)
        with export.export_ready(wrapped), torch.no_grad():
            names = export.output_names(wrapped, kind, example)
            export.export_onnx(wrapped, example, path, names)
        graph_out = args.graph_out or osp.join(tmp, 'optimised.onnx')
        opts = ort.SessionOptions()
        opts.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        opts.intra_op_num_threads = args.threads
        # idle threads wait passively, as torch's do under
        # OMP_WAIT_POLICY=PASSIVE: spinning ones slow a shared machine down
        opts.add_session_config_entry('session.intra_op.allow_spinning',
                                      '0')
        opts.optimized_model_filepath = graph_out
        sess = ort.InferenceSession(path, opts,
                                    providers=['CPUExecutionProvider'])
        original, optimised = op_counts(path), op_counts(graph_out)
    feed = {'img': img.numpy()}

    def eager():
        with torch.no_grad():
            wrapped(img)

    def eager_plain():
        with torch.no_grad(), plain_forward(wrapped):
            wrapped(img)

    # the outputs agree before anything is timed
    with torch.no_grad():
        ref = wrapped(img)
    ref = ref if isinstance(ref, (tuple, list)) else (ref, )
    got = sess.run(None, feed)
    diff = max(float(np.abs(g - r.numpy()).max() / max(1., float(
        r.abs().max()))) for g, r in zip(got, ref))
    fns = {'eager': eager, 'eager-plain': eager_plain,
           'onnxruntime': lambda: sess.run(None, feed)}
    print(f'{args.config} ({kind}) at {args.shape[0]}x{args.shape[1]}, '
          f'fp32, {args.threads} '
          f'threads, torch {torch.__version__}, onnxruntime '
          f'{ort.__version__}; onnxruntime vs eager: max |diff| '
          f'{diff:.1e} (relative to max(1, |output|))', flush=True)
    cpu: Dict[str, list] = {}
    timings = time_round_robin(fns, args.repeats, args.warmup,
                               log=lambda s: print(s, flush=True),
                               cpu_times=cpu)
    base = timings['eager'].median
    cpu_base = float(np.median(cpu['eager']))
    # CPU seconds (all threads): the work done, which time spent waiting for
    # other processes' threads does not inflate
    print('\n| runtime | median (s) | min (s) | ratio to eager | median CPU '
          '(s) | CPU ratio |')
    print('|---|---|---|---|---|---|')
    for name, t in timings.items():
        c = float(np.median(cpu[name]))
        print(f'| {name} | {t.median:.3f} | {min(t.times):.3f} | '
              f'{t.median / base:.2f} | {c:.2f} | {c / cpu_base:.2f} |')
    print('\nop types, exported -> optimised by onnxruntime:')
    for op in sorted(set(original) | set(optimised),
                     key=lambda o: -optimised.get(o, 0)):
        mark = ' *' if op in ATTENTION_OPS else ''
        print(f'  {op}: {original.get(op, 0)} -> {optimised.get(op, 0)}'
              f'{mark}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
