"""The two attentions of CAT: inner-patch (IPSA) and cross-patch (CPSA).

Both take a channels-last map (B, H, W, C) of any size and return one of the
same shape. They zero-pad to a multiple of the patch size N (the padded zeros
take part in attention, as in the authors' code), cut the map into sequences,
attend with :func:`~.sdpa.scaled_dot_product_attention` (PyTorch's, with the
head dimension padded for the fused kernels on GPUs) and put the map back
together.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from . import sdpa
from .patch_partition import (channel_patch_partition, channel_patch_reverse,
                              crop, pad_to_multiple, patch_partition,
                              patch_reverse)


def relative_position_index(patch_size: int) -> torch.Tensor:
    """Swin-style index into a ((2N-1)^2, heads) relative-bias table.

    Returns:
        (N*N, N*N) long tensor; entry (i, j) indexes the offset of pixel j
        seen from pixel i inside an N x N patch.
    """
    n = patch_size
    coords = torch.stack(torch.meshgrid(
        torch.arange(n), torch.arange(n), indexing='ij')).flatten(1)  # 2, NN
    rel = coords[:, :, None] - coords[:, None, :]                      # 2, NN, NN
    return (rel[0] + n - 1) * (2 * n - 1) + (rel[1] + n - 1)


def multi_head_attention(qkv: nn.Linear,
                         proj: nn.Linear,
                         tokens: torch.Tensor,
                         num_heads: int,
                         scale: float,
                         attn_drop: float = 0.,
                         bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Multi-head self-attention over the token axis.

    Args:
        qkv: the D -> 3D projection.
        proj: the D -> D output projection.
        tokens: (S, L, D): S independent sequences of L tokens.
        bias: (1, num_heads, L, L) additive attention bias, or None (4-D:
            CPU SDPA takes its math path for a 3-D mask); cast to the
            dtype of q.

    Returns:
        (S, L, D).
    """
    s, l, d = tokens.shape
    q, k, v = qkv(tokens).view(s, l, 3, num_heads, d // num_heads).permute(
        2, 0, 3, 1, 4).unbind(0)                              # S, heads, L, hd
    out = sdpa.scaled_dot_product_attention(
        q, k, v, attn_mask=bias, dropout_p=attn_drop, scale=scale)
    return proj(out.transpose(1, 2).reshape(s, l, d))


class InnerPatchAttention(BaseModule):
    """IPSA: multi-head self-attention among the N*N pixels of each patch.

    Args:
        embed_dims: channels C of the map (the token dimension).
        num_heads: attention heads; must divide ``embed_dims``.
        patch_size: N.
        qkv_bias: add a bias to q, k, v.
        qk_scale: overrides ``head_dim ** -0.5``.
        attn_drop_rate: dropout on the attention weights.
        proj_drop_rate: dropout after the output projection.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 patch_size: int = 7,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 attn_drop_rate: float = 0.,
                 proj_drop_rate: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads:
            raise ValueError(
                f'IPSA: embed_dims ({embed_dims}) must be divisible by '
                f'num_heads ({num_heads})')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.scale = qk_scale or (embed_dims // num_heads) ** -0.5
        self.attn_drop_rate = attn_drop_rate
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * patch_size - 1) ** 2, num_heads))
        self.register_buffer('relative_position_index',
                             relative_position_index(patch_size),
                             persistent=False)
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)

    def relative_position_bias(self) -> torch.Tensor:
        """(num_heads, N*N, N*N) additive bias gathered from the table."""
        nn_ = self.patch_size ** 2
        bias = self.relative_position_bias_table[
            self.relative_position_index.view(-1)]
        return bias.view(nn_, nn_, self.num_heads).permute(2, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        _, h, w, _ = x.shape
        x = pad_to_multiple(x, self.patch_size)
        tokens = patch_partition(x, self.patch_size)          # B*nP, N*N, C
        out = patch_reverse(self.attend(tokens), self.patch_size,
                            x.shape[1:3])
        return crop(out, h, w)

    def attend(self, tokens: torch.Tensor) -> torch.Tensor:
        """(S, N*N, C) patches -> (S, N*N, C)."""
        out = multi_head_attention(
            self.qkv, self.proj, tokens, self.num_heads, self.scale,
            self.attn_drop_rate if self.training else 0.,
            self.relative_position_bias().unsqueeze(0))
        return self.proj_drop(out)

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'patch_size={self.patch_size}')


class CrossPatchAttention(BaseModule):
    """CPSA: self-attention across the patches of each single channel.

    Each channel is cut into N x N patches; a patch's N*N values are one token
    of dimension N*N and the tokens of one sequence are all patches of that
    channel. The projections (N*N -> 3*N*N and N*N -> N*N) are shared by all
    channels; there is no relative bias (CAT adds an absolute position encoding
    to the embedded input instead).

    Args:
        patch_size: N.
        num_heads: heads over the N*N token dimension (1 in the paper); must
            divide N*N.
        qkv_bias: add a bias to q, k, v.
        qk_scale: overrides ``head_dim ** -0.5``.
        attn_drop_rate: dropout on the attention weights.
        proj_drop_rate: dropout after the output projection.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 patch_size: int = 7,
                 num_heads: int = 1,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 attn_drop_rate: float = 0.,
                 proj_drop_rate: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        token_dims = patch_size ** 2
        if num_heads < 1 or token_dims % num_heads:
            raise ValueError(
                f'CPSA: num_heads ({num_heads}) must divide the token '
                f'dimension patch_size**2 = {token_dims}')
        self.patch_size = patch_size
        self.num_heads = num_heads
        self.scale = qk_scale or (token_dims // num_heads) ** -0.5
        self.attn_drop_rate = attn_drop_rate
        self.qkv = nn.Linear(token_dims, token_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(token_dims, token_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        _, h, w, c = x.shape
        x = pad_to_multiple(x, self.patch_size)
        tokens = channel_patch_partition(x, self.patch_size)  # B*C, nP, N*N
        out = channel_patch_reverse(self.attend(tokens), self.patch_size,
                                    x.shape[1:3], c)
        return crop(out, h, w)

    def attend(self, tokens: torch.Tensor) -> torch.Tensor:
        """(S, nP, N*N) channel sequences -> (S, nP, N*N)."""
        out = multi_head_attention(
            self.qkv, self.proj, tokens, self.num_heads, self.scale,
            self.attn_drop_rate if self.training else 0.)
        return self.proj_drop(out)

    def extra_repr(self) -> str:
        return f'patch_size={self.patch_size}, num_heads={self.num_heads}'
