"""Report which scaled-dot-product-attention kernel each IPSA and CPSA layer
of a CAT backbone gets (flash, memory-efficient, cuDNN or math), as PyTorch
itself selects it for the tensors the layers pass, with PyTorch's reasons
when a fused CUDA kernel is ruled out.

    python tools/analysis_tools/sdpa_backends.py --models cat_s \
        --cpsa-num-heads 1,7 --device cuda --dtypes fp32,fp16,bf16 \
        --size 800x1344 --batch 2 --out work_dirs/sdpa_backends.md
    python tools/analysis_tools/sdpa_backends.py --models cat_t --device cpu \
        --size 224x224 --batch 1

One forward per model, CPSA head count and dtype (fp16/bf16 under
autocast, as mixed-precision training runs); --grad runs it in train mode
with autograd on, as in training. Identical calls of one stage share a row.
See docs/benchmark.md, 'Attention backends'.
"""
import argparse
import sys
from typing import List, Optional, Sequence

import torch

from mmcat.analysis.backbone_bench.run import parse_size
from mmcat.analysis.backbone_bench.work import DTYPES
from mmcat.analysis.sdpa_backends import (RunSpec, build_cat,
                                          cat_model_name, format_report,
                                          run_report)
from mmcat.analysis.timing import device_summary
from mmcat.models.layers import CrossPatchAttention


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', default='cat_s',
                        help='comma-separated: cat_t, cat_s, cat_b (and '
                        'their _cp variants); default cat_s')
    parser.add_argument('--cpsa-num-heads', default='1',
                        help='comma-separated CPSA head counts, each '
                        'dividing 49 (1: the paper; 7: its ablation); '
                        'default 1')
    parser.add_argument('--device', default=None,
                        help='cpu or cuda[:i] (default: cuda if available)')
    parser.add_argument('--dtypes', default='fp32',
                        help=f'comma-separated, of {", ".join(DTYPES)}; '
                        'default fp32')
    parser.add_argument('--size', default='800x1344',
                        help='input HxW (default 800x1344)')
    parser.add_argument('--batch', type=int, default=2,
                        help='images per forward (default 2)')
    parser.add_argument('--grad', action='store_true',
                        help='train mode with autograd on (as in training) '
                        'instead of eval mode under no_grad')
    parser.add_argument('--out', default=None,
                        help='also write the markdown report to this file')
    return parser.parse_args(argv)


def _split(text: str) -> List[str]:
    return [part.strip() for part in text.split(',') if part.strip()]


def specs_from_args(args: argparse.Namespace) -> List[RunSpec]:
    """Every run the arguments name, checked before any runs: a bad value
    is a ValueError naming it."""
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if torch.device(device).type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: this torch sees no CUDA '
                         f'device; use --device cpu')
    dtypes = _split(args.dtypes)
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f'--dtypes: unknown {dtype!r}; choose from '
                             f'{", ".join(DTYPES)}')
    try:
        heads = [int(h) for h in _split(args.cpsa_num_heads)]
    except ValueError:
        raise ValueError(f'--cpsa-num-heads {args.cpsa_num_heads!r}: use '
                         f'integers, e.g. 1,7')
    if args.batch < 1:
        raise ValueError(f'--batch must be >= 1, got {args.batch}')
    for h in heads:
        CrossPatchAttention(num_heads=h)    # its error for a bad head count
    size = parse_size(args.size)
    models = [cat_model_name(m) for m in _split(args.models)]
    if not (models and heads and dtypes):
        raise ValueError('--models, --cpsa-num-heads and --dtypes must each '
                         'name at least one value')
    return [RunSpec(model, h, device, dtype, size, args.batch, args.grad)
            for model in models for h in heads for dtype in dtypes]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        specs = specs_from_args(args)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    device = torch.device(specs[0].device)
    where = device_summary(device)
    if device.type == 'cuda':
        where += f'; cuDNN {torch.backends.cudnn.version()}'
    sections = [f'# SDPA backends\n\n{where}\n']
    model, built = None, None
    for spec in specs:   # one model per name and head count, for every dtype
        if built != (spec.model, spec.cpsa_num_heads):
            model = build_cat(spec.model, spec.cpsa_num_heads)
            built = (spec.model, spec.cpsa_num_heads)
        section = format_report(spec, run_report(spec, model))
        print(section, flush=True)
        sections.append(section)
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n'.join(sections))
        print(f'written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
