"""Convert a checkpoint of the CAT authors' code to mmcat's layout.

    python tools/model_converters/cat2mmcat.py cat_small.pth cat_s_mmcat.pth

* An ImageNet (classification) file gives a backbone state dict: use it with
  ``backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=...))``.
* A detection / segmentation file keeps its neck and head entries and gets
  its ``backbone.`` entries converted: use it with ``load_from``.

(``init_cfg`` also converts the authors' files on the fly; converting once
avoids doing it at every start and lets you inspect the result.)

Files are read with ``torch.load(weights_only=True)``; the ``yacs`` config
that the authors' ImageNet files carry loads as a plain mapping, without
running yacs. A file that holds other pickled code or objects is refused; if
you trust its source,
``--unsafe-trust-source`` reads it with ``weights_only=False`` (which runs
whatever it holds) and saves its tensors only, so that the result loads
safely from then on::

    python tools/model_converters/cat2mmcat.py --unsafe-trust-source \
        trusted.pth clean.pth
"""
import argparse
import pickle
import sys
from collections import OrderedDict
from typing import Mapping

import torch

from mmcat.models.utils import cat_converter, is_authors_layout
from mmcat.models.utils.ckpt_convert import unwrap_state_dict
from mmcat.models.utils.foreign_checkpoints import \
    register_foreign_config_stand_ins


def tensors_only(ckpt: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """The state dict inside ``ckpt`` (``state_dict``/``model`` wrapped or
    bare) as plain tensors, everything else dropped."""
    state = ckpt
    for key in ('state_dict', 'model'):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise SystemExit(f'the checkpoint holds no state dict (got '
                         f'{type(state).__name__})')
    return OrderedDict(
        (str(k), v.detach().as_subclass(torch.Tensor).clone())
        for k, v in state.items() if isinstance(v, torch.Tensor))


def _reason(error: Exception) -> str:
    """What torch's weights-only unpickler refused (without its advice to
    allow-list it)."""
    text = str(error).split('WeightsUnpickler error:')[-1]
    text = text.split('Check the documentation')[0].split(' Please use')[0]
    return "torch's weights-only unpickler: " + ' '.join(text.split())


def load_source(src: str, trust_source: bool = False) -> dict:
    """``torch.load`` weights-only; with ``trust_source``, a full unpickle
    (after a warning) reduced to the state dict's tensors."""
    if not trust_source:
        register_foreign_config_stand_ins()
        try:
            return torch.load(src, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as e:
            if 'Weights only load failed' not in str(e):
                raise
            raise SystemExit(
                f'{src} holds code or objects besides tensors (or is not a '
                f'checkpoint at all) and was not loaded: unpickling it could '
                f'run code. If you trust its source, run again with '
                f'--unsafe-trust-source.\n'
                f'{_reason(e)}') from e
    print(f'WARNING: --unsafe-trust-source: loading {src} with '
          f'weights_only=False runs any code the file holds. Do this only '
          f'for a file from a source you trust; only its tensors are '
          f'saved.', file=sys.stderr)
    ckpt = torch.load(src, map_location='cpu', weights_only=False)
    return {'state_dict': tensors_only(ckpt)}


def convert_file(src: str, dst: str,
                 trust_source: bool = False) -> OrderedDict:
    """Convert ``src`` and save it to ``dst``; returns the saved state dict.

    With ``trust_source`` the file is fully unpickled (see
    :func:`load_source`) and a file already in mmcat's layout
    is saved with its tensors only instead of being refused.
    """
    ckpt = load_source(src, trust_source)
    raw = ckpt
    for key in ('state_dict', 'model'):
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
    backbone = unwrap_state_dict(ckpt)
    if not is_authors_layout(backbone):
        if trust_source:
            out = ckpt['state_dict']
            torch.save({'state_dict': out, 'meta': {'cleaned_from': src}},
                       dst)
            return out
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
    parser.add_argument(
        '--unsafe-trust-source',
        action='store_true',
        help='read SRC with weights_only=False, which runs any code it '
        'holds (only for a file from a source you trust), and save its '
        'tensors only')
    args = parser.parse_args()
    out = convert_file(args.src, args.dst, args.unsafe_trust_source)
    print(f'saved {len(out)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
