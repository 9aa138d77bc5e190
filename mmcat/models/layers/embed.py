"""CAT's patch embedding (stem) and patch projection (between stages).

Both build their convolution with ``mmcv.cnn.build_conv_layer(conv_cfg, ...)``,
so any registered convolution (e.g. mmcat's ``SliceConv2d`` or
``DepthwiseSeparableConv2d``) is one config line away; the defaults are the
paper's and load the authors' weights.
"""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule

from ...registry import MODELS
from .patch_partition import exporting, pad_to_multiple, round_up
from .space_to_depth import space_to_depth_nhwc


def registered_conv_types() -> List[str]:
    """Names of the convolution layers ``build_conv_layer`` can build in the
    current scope (registered module classes with "conv" or "dcn" in their
    name, conv+norm+act blocks such as ``ConvModule`` left out)."""
    names = set()
    with MODELS.switch_scope_and_registry(None) as registry:
        while registry is not None:
            names.update(
                name for name, cls in registry.module_dict.items()
                if isinstance(cls, type) and issubclass(cls, nn.Module)
                and ('conv' in name.lower() or 'dcn' in name.lower())
                and not name.endswith('Module'))
            registry = registry.parent
    return sorted(names)


def _check_conv_type(conv_cfg: Optional[dict], field: str) -> None:
    """Raise ValueError naming ``field`` and the registered convolutions if
    ``conv_cfg`` names a type nobody registered (mmcv's own KeyError says
    "Cannot find None in registry")."""
    if conv_cfg is None or not isinstance(conv_cfg.get('type'), str):
        return
    with MODELS.switch_scope_and_registry(None) as registry:
        found = registry.get(conv_cfg['type'])
    if found is None:
        raise ValueError(
            f'{field}: unknown convolution type {conv_cfg["type"]!r}; '
            f'registered convolution types: {registered_conv_types()}')


class PatchEmbed(BaseModule):
    """Pad to a multiple of the stride, convolve (k = stride), then norm.

    Args:
        in_channels: input channels (3 for images).
        embed_dims: output channels C_1.
        patch_size: kernel size and stride P (4 in the paper).
        conv_cfg: convolution config (``None``: ``nn.Conv2d``).
        norm_cfg: norm config over channels (``None``: no norm).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_channels: int = 3,
                 embed_dims: int = 96,
                 patch_size: int = 4,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='LN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if patch_size < 1:
            raise ValueError(
                f'PatchEmbed: patch_size must be >= 1, got {patch_size}')
        self.patch_size = patch_size
        _check_conv_type(conv_cfg, 'PatchEmbed conv_cfg (CAT embed_conv_cfg)')
        self.proj = build_conv_layer(
            conv_cfg, in_channels, embed_dims, kernel_size=patch_size,
            stride=patch_size, bias=True)
        self.norm = (build_norm_layer(norm_cfg, embed_dims)[1]
                     if norm_cfg is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, ceil(H/P), ceil(W/P), C_1), channels last."""
        p = self.patch_size
        h, w = x.shape[2:]
        if exporting() or h % p or w % p:
            x = F.pad(x, (0, round_up(w, p) - w, 0, round_up(h, p) - h))
        x = self.proj(x).permute(0, 2, 3, 1)
        return self.norm(x) if self.norm is not None else x


class PatchProjection(BaseModule):
    """Halve the resolution: pad to even, space-to-depth 2x2, norm, reduce.

    The reduction is a 1x1 convolution 4C -> C_out without bias (the authors'
    ``Linear(4C, 2C, bias=False)``); together with the space-to-depth it is a
    2x2 stride-2 convolution applied after the norm.

    Args:
        in_channels: C.
        out_channels: C_out (2C in CAT).
        conv_cfg: convolution config of the reduction (``None``: ``nn.Conv2d``).
        norm_cfg: norm config over the 4C folded channels.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='LN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.norm = build_norm_layer(norm_cfg or dict(type='LN'),
                                     4 * in_channels)[1]
        _check_conv_type(
            conv_cfg, 'PatchProjection conv_cfg (CAT projection_conv_cfg)')
        self.reduction = build_conv_layer(
            conv_cfg, 4 * in_channels, out_channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), C_out), channels last."""
        x = self.norm(space_to_depth_nhwc(pad_to_multiple(x, 2), 2))
        # NHWC viewed as NCHW is channels_last memory: conv2d keeps that layout.
        return self.reduction(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
