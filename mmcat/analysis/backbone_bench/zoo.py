"""The backbones the benchmark compares and the input they all see.

mmcat's CAT-T/S/B (``cat_x``; ``cat_x_cp`` with gradient checkpointing,
``cat_x_ffncp`` recomputing the MLPs, ``cat_x_keepact`` keeping the MLPs'
activation outputs instead of recomputing them), the
paper's straightforward transcription of each (``ref_x``,
:class:`~mmcat.testing.cat_reference.ReferenceCAT`, with the same seeded
weights), MMDetection's Swin-T and ResNet-50. The CAT sizes are those of
:attr:`CAT.arch_zoo`, named by the letters of :attr:`CAT.arch_aliases`.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from mmcat.models import CAT

Size = Tuple[int, int]

#: The arch letters ('t', 's', 'b') of the CAT sizes.
_LETTERS = tuple(CAT.arch_aliases)
#: What a run measures unless told otherwise (the ``_cp`` variants on request).
DEFAULT_MODELS = (tuple(f'cat_{a}' for a in _LETTERS) +
                  tuple(f'ref_{a}' for a in _LETTERS) + ('swin_t', 'r50'))
#: Every model the benchmark can build.
#: Recomputation variants of the CATs: name suffix -> CAT arguments.
RECOMPUTE_VARIANTS: Dict[str, dict] = {
    'cp': dict(with_cp=True), 'ffncp': dict(ffn_with_cp=True),
    'keepact': dict(act_with_cp=False)}
MODEL_NAMES = DEFAULT_MODELS + tuple(
    f'cat_{a}_{v}' for v in RECOMPUTE_VARIANTS for a in _LETTERS)
MODEL_LABELS: Dict[str, str] = {
    'swin_t': 'Swin-T (mmdet)', 'r50': 'ResNet-50 (mmdet)',
    **{f'cat_{a}': f'CAT-{a.upper()} (mmcat)' for a in _LETTERS},
    **{f'ref_{a}': f'CAT-{a.upper()} (reference)' for a in _LETTERS},
    **{f'cat_{a}_{v}': f'CAT-{a.upper()} (mmcat, ' + ', '.join(
        k if val is True else f'{k}={val}' for k, val in kw.items()) + ')'
       for v, kw in RECOMPUTE_VARIANTS.items() for a in _LETTERS},
}


def canonical_model_name(name: str) -> str:
    """'CAT-S', 'cat-s', 'cat_s' -> 'cat_s'; 'swin' -> 'swin_t';
    'resnet50' -> 'r50'."""
    key = name.strip().lower().replace('-', '_')
    key = {'swin': 'swin_t', 'resnet50': 'r50', 'resnet_50': 'r50',
           'r_50': 'r50'}.get(key, key)
    if key not in MODEL_NAMES:
        raise ValueError(f'unknown model {name!r}; choose from '
                         f'{", ".join(MODEL_NAMES)}')
    return key


def reference_of(name: str) -> Optional[str]:
    """The reference a model's ratios are taken against: ``cat_x -> ref_x``,
    a reference against itself, None for Swin-T and ResNet-50."""
    if name.startswith(('cat_', 'ref_')):
        return 'ref_' + name[4]
    return None


def reference_cat(arch: str, seed: int = 0) -> nn.Module:
    """The paper's transcription of CAT-``arch`` ('t'/'s'/'b'), detection
    flavour, filled with seeded random weights (norms included)."""
    from mmcat.testing.cat_reference import ReferenceCAT
    spec = CAT.arch_zoo[CAT.arch_aliases[arch]]
    return ReferenceCAT(embed_dims=spec['embed_dims'], depths=spec['depths'],
                        num_heads=spec['num_heads']).randomize_(seed)


def build_backbone(name: str, seed: int = 0) -> nn.Module:
    """One benchmark model, in eval mode.

    CAT-T/S/B (mmcat, the arch's default drop-path) and their references
    carry the same seeded random weights, so their outputs can be compared;
    Swin-T and ResNet-50 are MMDetection's backbones as constructed.
    """
    name = canonical_model_name(name)
    if name.startswith('ref_'):
        model = reference_cat(name[4], seed)
    elif name.startswith('cat_'):
        model = CAT(arch=CAT.arch_aliases[name[4]],
                    **RECOMPUTE_VARIANTS.get(name[6:], {}))
        ref = reference_cat(name[4], seed)
        missing, unexpected = model.load_pretrained(ref.state_dict(),
                                                    source='reference')
        if missing or unexpected:
            raise RuntimeError(f'{name}: the reference weights do not map '
                               f'one to one: missing {missing}, unexpected '
                               f'{unexpected}')
        del ref
    elif name == 'swin_t':
        from mmdet.models.backbones import SwinTransformer
        torch.manual_seed(seed)
        model = SwinTransformer(embed_dims=96, depths=(2, 2, 6, 2),
                                num_heads=(3, 6, 12, 24), window_size=7)
    else:
        from mmdet.models.backbones import ResNet
        torch.manual_seed(seed)
        model = ResNet(depth=50)
    model.eval()  # mmdet's train() overrides return None: no chaining
    return model


def make_input(size: Size, batch: int, seed: int = 0,
               device: str = 'cpu') -> torch.Tensor:
    """The (batch, 3, H, W) input every model sees at this size."""
    g = torch.Generator().manual_seed(seed + 7919 * size[0] + size[1])
    return torch.randn(batch, 3, *size, generator=g).to(device)
