"""Write the synthetic demo datasets in the real COCO and ADE20K formats.

    python tools/generate_demo_data.py --out data            # both, defaults
    python tools/generate_demo_data.py --task coco --seed 1 --num-train 50

writes ``<out>/coco_demo`` (read by ``CocoDemoDataset``) and
``<out>/ade_demo/ADEChallengeData2016`` (read by ``ADE20KDemoDataset``). The
same arguments give the same bytes.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os.path as osp
import sys
import time

if importlib.util.find_spec('mmcat') is None:  # a checkout, not installed
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmcat.datasets import synthetic  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments."""
    defaults = synthetic.SceneConfig()
    parser = argparse.ArgumentParser(
        description='Write synthetic COCO/ADE20K-format demo datasets.')
    parser.add_argument('--out', default='data',
                        help='parent folder (default: data)')
    parser.add_argument('--task', choices=('coco', 'ade', 'all'),
                        default='all')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--image-size', type=int, nargs='+',
                        default=[defaults.height], metavar=('H', 'W'),
                        help='image height and width (one value: square)')
    parser.add_argument(
        '--num-classes', type=int, default=defaults.num_classes,
        help=f'shape classes, first N of {synthetic.SHAPE_CLASSES}; other '
        'than the default, set metainfo=dict(classes=...) in the config')
    parser.add_argument('--min-objects', type=int,
                        default=defaults.min_objects)
    parser.add_argument('--max-objects', type=int,
                        default=defaults.max_objects)
    parser.add_argument('--min-scale', type=float,
                        default=defaults.min_scale,
                        help='smallest object diameter / image side')
    parser.add_argument('--max-scale', type=float,
                        default=defaults.max_scale,
                        help='largest object diameter / image side')
    parser.add_argument('--max-distractors', type=int,
                        default=defaults.max_distractors,
                        help='unlabelled blobs per image, at most')
    parser.add_argument('--noise', type=float, nargs=2,
                        default=list(defaults.noise), metavar=('LO', 'HI'),
                        help='range of the Gaussian noise sigma (0..255)')
    parser.add_argument('--max-blur', type=float, default=defaults.max_blur,
                        help='largest Gaussian blur radius in pixels')
    parser.add_argument('--mask-format', choices=('mixed', 'rle'),
                        default='mixed',
                        help='COCO masks: polygons where exact, else RLE '
                        '(mixed), or RLE for all')
    parser.add_argument('--quiet', action='store_true',
                        help='print no statistics')
    args = parser.parse_args(argv)
    if len(args.image_size) > 2:
        parser.error('--image-size takes H or H W')
    return args


def main(argv: list[str] | None = None) -> None:
    """Generate the requested datasets and print their statistics."""
    args = parse_args(argv)
    h = args.image_size[0]
    w = args.image_size[-1]
    cfg = synthetic.SceneConfig(
        height=h, width=w, num_classes=args.num_classes,
        min_objects=args.min_objects, max_objects=args.max_objects,
        min_scale=args.min_scale, max_scale=args.max_scale,
        max_distractors=args.max_distractors, noise=tuple(args.noise),
        max_blur=args.max_blur)
    if args.task in ('coco', 'all'):
        start = time.perf_counter()
        summary = synthetic.write_coco(args.out, args.seed, args.num_train,
                                       args.num_val, cfg, args.mask_format)
        print(f'COCO: {summary["root"]} '
              f'({time.perf_counter() - start:.1f} s)')
        for split in ('train', 'val'):
            stats = synthetic.coco_statistics(summary[split]['ann_file'])
            stats.update(occluded=summary[split]['occluded'],
                         dropped=summary[split]['dropped'])
            if not args.quiet:
                print(f'  {split}: {json.dumps(stats)}')
    if args.task in ('ade', 'all'):
        start = time.perf_counter()
        summary = synthetic.write_ade(args.out, args.seed, args.num_train,
                                      args.num_val, cfg)
        print(f'ADE20K: {summary["root"]} '
              f'({time.perf_counter() - start:.1f} s)')
        classes = ('other', ) + synthetic.ade_classes(args.num_classes)
        for split in ('train', 'val'):
            stats = synthetic.ade_statistics(summary[split]['ann_dir'],
                                             len(classes) - 1)
            if not args.quiet:
                fractions = {c: round(f, 4) for c, f in
                             zip(classes, stats['pixel_fraction'])}
                print(f'  {split}: {stats["images"]} images, pixel '
                      f'fractions {json.dumps(fractions)}')


if __name__ == '__main__':
    main()
