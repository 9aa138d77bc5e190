"""Build a detector or segmentor from a config, run one forward pass on a
random image, and print the shapes of what each part returns and the
parameter counts.

    python tools/inspect_model.py configs/fcos_cat_s_1x_coco.py --shape 800 1333
"""
import argparse
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import MODELS, init_default_scope

import mmcat  # noqa: F401  (registers CAT and the convolution primitives)
from mmcat.utils.benchmark import synthetic_data_samples
from mmcat.utils.model_checks import check_neck_widths


def _shapes(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return 'x'.join(map(str, obj.shape))
    if isinstance(obj, (list, tuple)):
        return '[' + ', '.join(_shapes(o) for o in obj) + ']'
    if isinstance(obj, dict):
        return '{' + ', '.join(f'{k}: {_shapes(v)}' for k, v in obj.items()) + '}'
    return type(obj).__name__


def _millions(module: torch.nn.Module) -> str:
    n = sum(p.numel() for p in module.parameters())
    return f'{n:,} ({n / 1e6:.2f}M)'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=None,
                        metavar=('H', 'W'),
                        help='input size (default: 800 1333 for detection, '
                        '512 512 for segmentation)')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    scope = cfg.get('default_scope', 'mmdet')
    init_default_scope(scope)
    model = MODELS.build(cfg.model).eval()
    check_neck_widths(model)
    h, w = args.shape or ((512, 512) if scope == 'mmseg' else (800, 1333))
    x = torch.randn(args.batch, 3, h, w)

    print(f'config: {args.config} ({scope})')
    print(f'model: {type(model).__name__}, parameters {_millions(model)}')
    for part in ('backbone', 'neck', 'decode_head', 'bbox_head', 'rpn_head',
                 'roi_head', 'auxiliary_head'):
        if isinstance(getattr(model, part, None), torch.nn.Module):
            print(f'  {part}: {type(getattr(model, part)).__name__}, '
                  f'parameters {_millions(getattr(model, part))}')
    with torch.no_grad():
        start = time.perf_counter()
        feats = model.backbone(x)
        print(f'input {_shapes(x)} -> backbone outputs {_shapes(feats)}')
        if getattr(model, 'neck', None) is not None:
            print(f'  neck outputs {_shapes(model.neck(feats))}')
        # Two-stage detectors need image metadata even in tensor mode.
        samples = synthetic_data_samples(scope, args.batch, h, w)
        out = model(x, samples, mode='tensor')
        print(f'  {type(model).__name__} outputs {_shapes(out)}')
        print(f'forward time (backbone + whole model, CPU): '
              f'{time.perf_counter() - start:.2f} s')


if __name__ == '__main__':
    main()
