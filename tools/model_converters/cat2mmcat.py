"""Convert a checkpoint of the CAT authors' code to mmcat's layout.

    python tools/model_converters/cat2mmcat.py cat_small.pth cat_s_mmcat.pth

* An ImageNet (classification) file gives a backbone state dict: use it with
  ``backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=...))``.
* A detection / segmentation file keeps its neck and head entries and gets
  its ``backbone.`` entries converted: use it with ``load_from``.

(``init_cfg`` also converts the authors' files on the fly; converting once
avoids doing it at every start and lets you inspect the result.)
"""
import argparse
from collections import OrderedDict

import torch

from mmcat.models.utils import cat_converter, is_authors_layout
from mmcat.models.utils.ckpt_convert import unwrap_state_dict


def convert_file(src: str, dst: str) -> OrderedDict:
    """Convert ``src`` and save it to ``dst``; returns the saved state dict."""
    ckpt = torch.load(src, map_location='cpu', weights_only=True)
    raw = ckpt
    for key in ('state_dict', 'model'):
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
    backbone = unwrap_state_dict(ckpt)
    if not is_authors_layout(backbone):
        raise SystemExit(
            f'{src} is not in the CAT authors\' layout (no "ape" nor '
            f'"layers.*.pre_ipsa_blocks.*" keys); nothing to convert')
    converted = cat_converter(ckpt)
    whole_model = any(k.startswith(('backbone.', 'module.backbone.'))
                      for k in raw)
    if whole_model:
        out = OrderedDict()
        for k, v in raw.items():
            k = k[len('module.'):] if k.startswith('module.') else k
            if not k.startswith('backbone.'):
                out[k] = v
        out.update((f'backbone.{k}', v) for k, v in converted.items())
    else:
        out = converted
    torch.save({'state_dict': out, 'meta': {'converted_from': src}}, dst)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description='Convert a CAT authors\' checkpoint to mmcat keys')
    parser.add_argument('src', help='the authors\' checkpoint')
    parser.add_argument('dst', help='where to save the converted file')
    args = parser.parse_args()
    out = convert_file(args.src, args.dst)
    print(f'saved {len(out)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
