"""Inference speed (FPS, latency) of a detector or segmentor from a config.

    python tools/analysis_tools/benchmark_fps.py \
        configs/fcos_cat_s_1x_coco.py --shape 800 1280 --num-iters 20

Two modes:

* ``tensor`` (default): ``model(x, mode='tensor')`` on a random, already
  normalised (B, 3, H, W) batch: backbone + neck + head, the network alone.
  Its cost does not depend on the weights, so randomly initialised models
  give the speed of trained ones; this is the number to compare backbones.
* ``predict``: ``model.test_step(data)`` on random uint8 images with data
  samples: the data preprocessor (normalise, pad), the network and the
  post-processing (box decoding, NMS, rescaling / segmentation resize). With
  random weights the number of boxes reaching NMS is not that of a trained
  model, so treat the post-processing share as indicative only.

Weights stay as built (no checkpoint is loaded). Runs on the GPU when there is
one (``--device`` to choose), synchronising around every timed call.
"""
import argparse
import json
import sys
from typing import Callable, Tuple

import torch

from mmcat.analysis import (add_model_args, autocast_context, device_summary,
                            model_from_config, synthetic_data_samples,
                            time_fn)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument('--num-iters', type=int, default=20,
                        help='timed calls')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed calls first')
    parser.add_argument('--batch', type=int, default=1, help='images per call')
    parser.add_argument('--mode', choices=('tensor', 'predict'),
                        default='tensor', help='what one call runs (see the '
                        'module docstring)')
    parser.add_argument('--amp', action='store_true',
                        help='autocast: float16 on CUDA, bfloat16 on CPU')
    parser.add_argument('--device', default=None,
                        help='cpu or cuda[:i] (default: cuda if available)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s choice)')
    parser.add_argument('--max-seconds', type=float, default=None,
                        help='stop timing early after this many seconds')
    parser.add_argument('--out-json', default=None,
                        help='also write the timings to this JSON file')
    return parser.parse_args()


def build_call(model: torch.nn.Module, mode: str, scope: str,
               shape: Tuple[int, int], batch: int,
               device: torch.device) -> Callable[[], object]:
    """The work of one timed call."""
    h, w = shape
    if mode == 'tensor':
        x = torch.randn(batch, 3, h, w, device=device)
        return lambda: model(x, mode='tensor')
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
              for _ in range(batch)]
    samples = synthetic_data_samples(scope, batch, h, w)

    def call():
        data = dict(inputs=list(images),
                    data_samples=[s.clone() for s in samples])
        return model.test_step(data)

    return call


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    built = model_from_config(args.config, args.cfg_options, args.shape)
    scope, (h, w) = built.scope, built.input_size
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    model = built.model.to(device)
    call = build_call(model, args.mode, scope, (h, w), args.batch, device)

    def run():
        with torch.inference_mode(), autocast_context(device, args.amp):
            return call()

    timing = time_fn(run, num_iters=args.num_iters, warmup=args.warmup,
                     batch=args.batch, device=device,
                     max_seconds=args.max_seconds)
    what = ('network only: model(x, mode="tensor"), backbone + neck + head'
            if args.mode == 'tensor' else
            'model.test_step: preprocessing + network + post-processing')
    print(f'config: {args.config} ({scope}); model '
          f'{type(model).__name__}, backbone '
          f'{type(getattr(model, "backbone", model)).__name__}')
    print(f'input: {args.batch}x3x{h}x{w}, mode {args.mode} ({what}), '
          f'{"AMP" if args.amp else "float32"}, random weights')
    print(f'device: {device_summary(device)}')
    print(f'warm-up {args.warmup} calls, timed {len(timing.times)} calls')
    print(f'FPS: {timing.fps:.3g}')
    print(timing.format())
    if args.out_json:
        with open(args.out_json, 'w') as f:
            json.dump(dict(config=args.config, shape=[h, w],
                           mode=args.mode, amp=args.amp,
                           device=device_summary(device),
                           times_s=timing.times, **timing.summary()),
                      f, indent=2)
        print(f'written: {args.out_json}')


if __name__ == '__main__':
    sys.exit(main())
