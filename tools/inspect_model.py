"""Build a detector or segmentor from a config, run one forward pass on a
random image, and print the shapes of what each part returns and the
parameter counts.

    python tools/inspect_model.py configs/fcos_cat_s_1x_coco.py --shape 800 1280

The default input is that of the other analysis tools: 800x1280 for
detection, 512x512 for segmentation.
"""
import argparse
import time

import torch

from mmcat.analysis import (add_model_args, count_parameters,
                            model_from_config, model_parts,
                            synthetic_data_samples)
from mmcat.engine.model_checks import check_neck_widths


def _shapes(obj) -> str:
    if isinstance(obj, torch.Tensor):
        return 'x'.join(map(str, obj.shape))
    if isinstance(obj, (list, tuple)):
        return '[' + ', '.join(_shapes(o) for o in obj) + ']'
    if isinstance(obj, dict):
        return '{' + ', '.join(f'{k}: {_shapes(v)}' for k, v in obj.items()) + '}'
    return type(obj).__name__


def _millions(module: torch.nn.Module) -> str:
    n = count_parameters(module)
    return f'{n:,} ({n / 1e6:.2f}M)'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument('--batch', type=int, default=1)
    args = parser.parse_args()

    built = model_from_config(args.config, args.cfg_options, args.shape)
    scope, model, (h, w) = built.scope, built.model, built.input_size
    check_neck_widths(model)
    x = torch.randn(args.batch, 3, h, w)

    print(f'config: {args.config} ({scope})')
    print(f'model: {type(model).__name__}, parameters {_millions(model)}')
    for part, mod in model_parts(model):
        print(f'  {part}: {type(mod).__name__}, parameters {_millions(mod)}')
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
