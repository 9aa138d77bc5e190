"""Convert checkpoints of the CAT authors' code to mmcat's key layout.

The authors' files come in two flavours:

* ImageNet classification: ``ape`` of shape (1, L, C_1) (an L = s*s grid,
  row-major, channels last), ``layers.{i}.{pre_ipsa,cpsa,post_ipsa}_blocks.{j}``,
  ``layers.{i}.downsample``, a final ``norm`` (of the last stage) and ``head``;
* detection / segmentation: the same blocks under ``backbone.``, ``ape`` of
  shape (1, C_1, s, s) and ``norm0`` .. ``norm3``.

mmcat names them ``absolute_pos_embed``, ``stages.{i}.blocks.{j}.{pre_ipsa,
cpsa,post_ipsa}``, ``stages.{i}.downsample`` (whose reduction is a 1x1 conv)
and ``norm{i}``. mmcat's own files pass through unchanged apart from prefixes.

A patch-embedding convolution saved as a k x k stride-k ``Conv2d`` and one
saved as a :class:`~mmcat.models.layers.convs.SliceConv2d` compute the same;
:func:`embedding_conv_to` rewrites either into the other's form.
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping, Optional

import torch
import torch.nn as nn

from ..layers.convs import (SliceConv2d, conv_weight_to_slice_weight,
                            slice_weight_to_conv_weight)

_BLOCK = re.compile(r'^layers\.(\d+)\.(pre_ipsa|cpsa|post_ipsa)_blocks\.(\d+)\.(.*)$')
_DOWN = re.compile(r'^layers\.(\d+)\.downsample\.(.*)$')
# Buffers the authors save that mmcat recomputes.
_DROPPED_SUFFIXES = ('relative_position_index', 'attn_mask')


def unwrap_state_dict(checkpoint: Mapping) -> Dict[str, torch.Tensor]:
    """The tensor dict inside a checkpoint (``state_dict``/``model`` wrapped or
    bare), with ``module.`` prefixes removed and, when the file holds a whole
    detector/segmentor, only the ``backbone.`` entries (prefix removed)."""
    state = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(state, Mapping) and key in state and \
                isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise TypeError(f'checkpoint holds no state dict (got '
                        f'{type(state).__name__})')
    state = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state.items() if isinstance(v, torch.Tensor))
    if any(k.startswith('backbone.') for k in state):
        state = OrderedDict((k[len('backbone.'):], v)
                            for k, v in state.items()
                            if k.startswith('backbone.'))
    return state


def is_authors_layout(state: Mapping[str, torch.Tensor]) -> bool:
    """True if the keys (prefixes already stripped) are the authors'."""
    return 'ape' in state or any(_BLOCK.match(k) or _DOWN.match(k)
                                 for k in state)


def _convert_ape(ape: torch.Tensor) -> torch.Tensor:
    if ape.dim() == 3:                       # (1, L, C): classification layout
        _, length, channels = ape.shape
        side = int(round(length ** 0.5))
        if side * side != length:
            raise ValueError(f'ape of shape {tuple(ape.shape)} is not a '
                             f'square grid')
        return ape.reshape(1, side, side, channels).permute(0, 3, 1, 2)
    return ape                              # (1, C, s, s): detection layout


def cat_converter(checkpoint: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """Return the backbone state dict of ``checkpoint`` in mmcat's layout.

    Accepts the authors' classification or detection/segmentation files and
    mmcat's own (wrapped in ``state_dict``/``model`` or not, with or without
    ``backbone.``/``module.`` prefixes). Classification heads are dropped.
    """
    state = unwrap_state_dict(checkpoint)
    if not is_authors_layout(state):
        return OrderedDict(state)
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, value in state.items():
        if key.endswith(_DROPPED_SUFFIXES) or key.startswith('head.'):
            continue
        if key == 'ape':
            out['absolute_pos_embed'] = _convert_ape(value)
            continue
        m = _BLOCK.match(key)
        if m:
            stage, kind, block, rest = m.groups()
            out[f'stages.{stage}.blocks.{block}.{kind}.{rest}'] = value
            continue
        m = _DOWN.match(key)
        if m:
            stage, rest = m.groups()
            if rest == 'reduction.weight' and value.dim() == 2:
                value = value[:, :, None, None]   # Linear -> 1x1 conv
            out[f'stages.{stage}.downsample.{rest}'] = value
            continue
        if key.startswith('norm.'):               # classification: last stage
            num_stages = 1 + max(int(k.split('.')[1]) for k in state
                                 if k.startswith('layers.'))
            out[f'norm{num_stages - 1}.{key[len("norm."):]}'] = value
            continue
        out[key] = value                           # patch_embed.*, norm{i}.*
    return out


def _is_patchify_conv(conv: nn.Module) -> bool:
    """A plain square k x k stride-k convolution without padding."""
    return (isinstance(conv, nn.Conv2d) and conv.groups == 1 and
            conv.kernel_size[0] == conv.kernel_size[1] and
            tuple(conv.stride) == tuple(conv.kernel_size) and
            tuple(conv.dilation) == (1, 1) and tuple(conv.padding) == (0, 0))


def _mapped_entries(theirs: Dict[str, torch.Tensor], conv: nn.Module
                    ) -> Optional[Dict[str, torch.Tensor]]:
    """``theirs`` (the conv's tensors, prefix removed) in ``conv``'s form, or
    None when no exact mapping applies."""
    if isinstance(conv, SliceConv2d) and set(theirs) <= {'weight', 'bias'} \
            and 'weight' in theirs:
        weight = theirs['weight']
        if weight.dim() != 4 or weight.shape[2] != weight.shape[3]:
            return None
        out = {'conv.weight': conv_weight_to_slice_weight(weight)}
    elif _is_patchify_conv(conv) and set(theirs) <= {
            'conv.weight', 'conv.bias'} and 'conv.weight' in theirs:
        weight, k = theirs['conv.weight'], conv.kernel_size[0]
        if weight.dim() != 4 or tuple(weight.shape[2:]) != (1, 1) or \
                weight.shape[1] % (k * k):
            return None
        out = {'weight': slice_weight_to_conv_weight(weight, k)}
    else:
        return None
    bias = theirs.get('bias', theirs.get('conv.bias'))
    if bias is not None:
        out['conv.bias' if 'conv.weight' in out else 'bias'] = bias
    return out


def embedding_conv_to(state: Mapping[str, torch.Tensor], conv: nn.Module,
                      prefix: str) -> 'OrderedDict[str, torch.Tensor]':
    """``state`` with the tensors of the convolution under ``prefix``
    rewritten into the form of ``conv`` where one maps exactly onto the other:
    a k x k stride-k ``Conv2d`` (weight (C, Cin, k, k)) <-> a
    :class:`SliceConv2d` of factor k (``conv.weight`` (C, k*k*Cin, 1, 1)).

    Args:
        state: a state dict in mmcat's layout.
        conv: the convolution the tensors are to load into.
        prefix: its name in ``state`` with a trailing dot, e.g.
            ``'patch_embed.proj.'``.

    Returns:
        A new state dict; ``state``'s entries unchanged when they are already
        in ``conv``'s form or no exact mapping applies (the caller then finds
        them unexpected or of the wrong shape).
    """
    theirs = {k[len(prefix):]: v for k, v in state.items()
              if k.startswith(prefix)}
    ours = {k: v.shape for k, v in conv.state_dict().items()}
    out = OrderedDict(state)
    mapped = _mapped_entries(theirs, conv) if theirs else None
    if mapped is None or {k: v.shape for k, v in mapped.items()} != ours:
        return out
    for key in theirs:
        del out[prefix + key]
    out.update((prefix + k, v) for k, v in mapped.items())
    return out
