"""Draw a config's annotations on a few of its images, to check the data
before training (MMDetection's ``browse_dataset``, for a folder of files).

The images go through the split's pipeline, so what is drawn is what the
model is trained on (resized, flipped); boxes, masks and labels for
detection, colour maps for segmentation. ``--print-classes`` prints the
``classes = (...)`` line of the training annotation file (COCO format).

Examples::

    python tools/analysis_tools/browse_dataset.py MY_CONFIG --out vis --num 8
    python tools/analysis_tools/browse_dataset.py MY_CONFIG --print-classes
"""
import argparse
import json
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Draw a dataset\'s '
                                     'annotations on its images')
    parser.add_argument('config', help='a training config')
    parser.add_argument('--out', default='outputs/browse',
                        help='where the pictures go')
    parser.add_argument('--num', type=int, default=8,
                        help='how many images (the first ones)')
    parser.add_argument('--split', choices=('train', 'val', 'test'),
                        default='train')
    parser.add_argument('--print-classes', action='store_true',
                        help='print the classes line of the training '
                        'annotation file and stop')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config (key=value)')
    return parser.parse_args(argv)


def classes_line(ann_file: str) -> str:
    """``classes = (...)`` with the categories of a COCO annotation file,
    ordered by id (the order MMDetection's CocoDataset maps them in)."""
    with open(ann_file, encoding='utf-8') as f:
        categories = json.load(f).get('categories')
    if not categories:
        raise ValueError(f'{ann_file} has no "categories": not a COCO '
                         'instances file')
    names = tuple(c['name'] for c in sorted(categories, key=lambda c: c['id']))
    return f'classes = {names!r}'


def _image(inputs) -> 'np.ndarray':  # noqa: F821
    """A packed (C, H, W) BGR tensor as an (H, W, C) RGB array."""
    return inputs.permute(1, 2, 0).numpy()[..., ::-1].copy()


def _det_sample(sample):
    """Boxes as a tensor and masks as a bool array, as the visualizer
    draws them."""
    from mmdet.models.utils import mask2ndarray
    from mmdet.structures.bbox import BaseBoxes
    sample = sample.numpy()
    gt = sample.gt_instances
    if isinstance(gt.get('bboxes', None), BaseBoxes):
        gt.bboxes = gt.bboxes.tensor
    if gt.get('masks', None) is not None:
        gt.masks = mask2ndarray(gt.masks).astype(bool)
    sample.gt_instances = gt
    return sample


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    dataset_cfg = cfg[f'{args.split}_dataloader'].dataset
    if args.print_classes:
        root = dataset_cfg.get('data_root', '') or ''
        print(classes_line(osp.join(root, dataset_cfg.ann_file)))
        return

    from mmengine.registry import DATASETS, VISUALIZERS, init_default_scope
    scope = cfg.get('default_scope', 'mmdet')
    if scope == 'mmseg':
        from mmseg.utils import register_all_modules
    else:
        from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope(scope)
    dataset = DATASETS.build(dataset_cfg)
    visualizer = VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(args.out, exist_ok=True)
    for i in range(min(args.num, len(dataset))):
        item = dataset[i]
        sample = item['data_samples']
        if scope != 'mmseg':
            sample = _det_sample(sample)
        name = osp.basename(sample.img_path)
        out_file = osp.join(args.out, osp.splitext(name)[0] + '.jpg')
        visualizer.add_datasample(
            name, _image(item['inputs']), sample, draw_pred=False,
            show=False, out_file=out_file)
        print(f'{sample.img_path} -> {out_file}')
    print(f'classes: {", ".join(dataset.metainfo["classes"])}')


if __name__ == '__main__':
    main()
