"""Checks of a built model that turn late, cryptic failures into early,
clear ones.

A neck whose ``in_channels`` do not match the backbone's outputs builds
fine and fails at the first forward pass with a convolution's shape error
("expected input[2, 96, 200, 334] to have 256 channels"), deep inside the
first training iteration; :func:`check_neck_widths` says it at build time.
"""
from typing import List, Optional, Sequence

import torch.nn as nn
from mmengine.model import is_model_wrapper

__all__ = ['backbone_out_channels', 'check_neck_widths', 'unwrap_model']


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DDP/FSDP wrappers and test-time-augmentation models
    (anything keeping it as ``.module``)."""
    while is_model_wrapper(model) or (
            not hasattr(model, 'backbone')
            and isinstance(getattr(model, 'module', None), nn.Module)):
        model = model.module
    return model


def _resnet_stage_widths(backbone: nn.Module) -> Optional[List[int]]:
    """Output channels of each stage of an mmdet/mmseg ResNet (and its
    ResNeXt/ResNetV1c/... variants): the last block's last convolution."""
    widths = []
    for name in backbone.res_layers:
        block = getattr(backbone, name)[-1]
        conv = getattr(block, 'conv3', None)
        if conv is None:
            conv = getattr(block, 'conv2', None)
        if conv is None or not hasattr(conv, 'out_channels'):
            return None
        widths.append(conv.out_channels)
    return widths


def backbone_out_channels(backbone: nn.Module) -> Optional[List[int]]:
    """Channels of the feature maps ``backbone`` returns, in order, or None
    for a backbone this function does not know.

    Knows backbones with ``num_features`` (one width per stage) and
    ``out_indices`` (CAT, Swin) and mmdet/mmseg ResNets (``res_layers``).
    """
    out_indices = getattr(backbone, 'out_indices', None)
    if out_indices is None:
        return None
    widths = getattr(backbone, 'num_features', None)
    if not isinstance(widths, Sequence):
        widths = (_resnet_stage_widths(backbone)
                  if hasattr(backbone, 'res_layers') else None)
    if not widths:
        return None
    try:
        return [int(widths[i]) for i in out_indices]
    except (IndexError, TypeError):
        return None


def check_neck_widths(model: nn.Module) -> None:
    """Raise ValueError if ``model.neck.in_channels`` (a list) differs from
    the widths of the maps ``model.backbone`` returns.

    Does nothing for a model without a backbone or a neck, for a neck
    without a list of input widths, or for a backbone
    :func:`backbone_out_channels` does not know.

    Args:
        model: a built detector or segmentor, possibly wrapped (DDP, TTA).
    """
    model = unwrap_model(model)
    backbone = getattr(model, 'backbone', None)
    neck = getattr(model, 'neck', None)
    if not isinstance(backbone, nn.Module) or not isinstance(neck, nn.Module):
        return
    in_channels = getattr(neck, 'in_channels', None)
    if not isinstance(in_channels, Sequence) or isinstance(in_channels, str):
        return
    widths = backbone_out_channels(backbone)
    if widths is None or list(in_channels) == widths:
        return
    raise ValueError(
        f'The neck ({type(neck).__name__}) expects in_channels='
        f'{list(in_channels)}, but the backbone ({type(backbone).__name__}, '
        f'out_indices={tuple(backbone.out_indices)}) returns maps with '
        f'{widths} channels. Set model.neck.in_channels={widths} (or change '
        f'the backbone\'s out_indices / widths).')
