"""Count the multiply-adds and parameters of a detector or segmentor built
from a config, with a per-attention-layer table of its CAT backbone set
next to the paper's cost formulas (Eq. 1-3).

    python tools/analysis_tools/get_flops.py configs/fcos_cat_s_1x_coco.py \
        --shape 800 1280
    python tools/analysis_tools/get_flops.py configs/fcos_cat_s_1x_coco.py \
        --shape 224 224 --backbone-only --cfg-options model.backbone.arch=base

Counts are multiply-adds (one fused multiply-add = 1), the convention of the
CAT paper's "FLOPs" and of mmengine's FlopAnalyzer; the attention products
(``scaled_dot_product_attention``) are counted, element-wise ops are not.
"""
import argparse
import json
import sys
from typing import Dict, Optional

import torch

from mmcat.analysis import (add_model_args, analyze_flops, count_parameters,
                            format_attention_table, model_from_config,
                            model_parts, synthetic_data_samples)
from mmcat.analysis.flops import stage_map_size


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument('--backbone-only', action='store_true',
                        help='count the backbone alone')
    parser.add_argument('--out-json', default=None,
                        help='also write the numbers to this JSON file')
    return parser.parse_args()


def _fmt(macs: int, params: Optional[int] = None) -> str:
    text = f'{macs / 1e9:9.3f} GMACs'
    if params is not None:
        text += f'  {params / 1e6:8.3f} M params'
    return text


def main() -> None:
    args = parse_args()
    built = model_from_config(args.config, args.cfg_options, args.shape)
    cfg, scope, model, backbone = (built.cfg, built.scope, built.model,
                                   built.backbone)
    h, w = built.input_size
    target = backbone if args.backbone_only else model
    prefix = '' if args.backbone_only or target is backbone else 'backbone'
    x = torch.randn(1, 3, h, w)

    kwargs = None
    if target is model and hasattr(model, 'data_preprocessor'):
        # two-stage detectors read image metas even in 'tensor' mode
        kwargs = dict(data_samples=synthetic_data_samples(scope, 1, h, w),
                      mode='tensor')
    report = analyze_flops(target, (x, ), forward_kwargs=kwargs)
    params = count_parameters(target)

    print(f'config: {args.config} ({scope}); model {type(model).__name__}, '
          f'backbone {type(backbone).__name__}; input 1x3x{h}x{w}')
    print('convention: multiply-adds (1 fused multiply-add = 1 "FLOP", as '
          'the CAT paper\'s FLOPs); attention products counted through '
          'aten::scaled_dot_product_attention; element-wise ops not counted')
    name = 'backbone' if args.backbone_only else 'whole model'
    print(f'{name:<14s}{_fmt(report.total, params)}')
    parts: Dict[str, Dict[str, float]] = {}
    if not args.backbone_only:
        for part, mod in model_parts(model):
            macs = report.by_module.get(part, 0)
            parts[part] = dict(macs=macs, params=count_parameters(mod))
            print(f'  {part:<12s}{_fmt(macs, parts[part]["params"])}')
    sdpa = report.by_operator.get('scaled_dot_product_attention', 0)
    print(f'of which attention products (q k^T, attn v): {sdpa / 1e9:.3f} '
          f'GMACs ({100 * sdpa / max(report.total, 1):.1f}%); without '
          f'them (as counters that skip matrix products report): '
          f'{(report.total - sdpa) / 1e9:.3f} GMACs')
    if report.unsupported:
        ops = ', '.join(f'{k.replace("aten::", "")} x{v}'
                        for k, v in sorted(report.unsupported.items()))
        print(f'uncounted ops (element-wise, or with no handle): {ops}')
    rpn_cfg = (cfg.model.get('test_cfg') or {}).get('rpn') or {}
    if not args.backbone_only and 'roi_head' in parts and rpn_cfg:
        print(f'note: roi_head counted on the RPN\'s proposals of a random '
              f'model (at most {rpn_cfg.get("max_per_img", "?")} per image, '
              f'test_cfg.rpn.max_per_img)')

    stats = report.attention
    if stats:
        print()
        print('attention layers of the backbone, multiply-adds per image. '
              'Eq. 2 IPSA = 4HWC^2 + 2N^2HWC, Eq. 3 CPSA = 4N^2HWC + '
              '2(HW/N)^2C with H, W padded to a multiple of N; Eq. 1 '
              '(global MSA, for comparison) = 4HWC^2 + 2(HW)^2C on the map '
              'as is. counted = qkv + attention products + proj.')
        for s in stats:
            if prefix and s.name.startswith(prefix + '.'):
                s.name = s.name[len(prefix) + 1:]
        print(format_attention_table(stats))
        stride = getattr(getattr(backbone, 'patch_embed', None),
                         'patch_size', 4)
        odd = [s.name for s in stats if s.stage is not None and
               (s.h, s.w) != stage_map_size(h, w, s.stage, stride)]
        if odd:
            print(f'note: these layers see a map other than ceil(H/4/2^i) x '
                  f'ceil(W/4/2^i): {odd}')

    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(dict(
                config=args.config, shape=[h, w],
                backbone_only=args.backbone_only, macs=report.total,
                params=params, parts=parts, attention_products=sdpa,
                unsupported_ops=report.unsupported,
                attention_layers=[dict(
                    name=s.name, type=s.kind, h=s.h, w=s.w, c=s.c,
                    padded=[s.hp, s.wp], counted=s.counted, paper=s.paper,
                    ratio=s.ratio, msa=s.msa) for s in stats]), f, indent=2)
        print(f'written: {args.out_json}')


if __name__ == '__main__':
    sys.exit(main())
