"""The two attentions of CAT: inner-patch (IPSA) and cross-patch (CPSA).

Both take a channels-last map (B, H, W, C) of any size and return one of the
same shape. They zero-pad to a multiple of the patch size N (the padded zeros
take part in attention, as in the authors' code), attend, and crop.
Attention runs through ``F.scaled_dot_product_attention``, which picks a fused,
memory-efficient kernel on both CPU and GPU.
"""
from functools import partial
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from . import fast_path
from .patch_partition import (channel_patch_partition, channel_patch_reverse,
                              pad_to_multiple, patch_partition, patch_reverse)


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


def _multi_head_attention(qkv: nn.Linear, proj: nn.Linear, tokens: torch.Tensor,
                          num_heads: int, scale: float, attn_drop: float,
                          bias: Optional[torch.Tensor] = None,
                          inference: bool = False) -> torch.Tensor:
    """Multi-head self-attention over the token axis.

    Args:
        tokens: (S, L, D): S independent sequences of L tokens.
        bias: (1, num_heads, L, L) additive attention bias, or None (4-D:
            a 3-D mask sends CPU SDPA to its slow math path).
        inference: CPU inference: the projections take
            :func:`fast_path.linear`.

    Returns:
        (S, L, D).
    """
    s, l, d = tokens.shape
    if inference:
        qkv = partial(fast_path.linear, qkv)
        proj = partial(fast_path.linear, proj)
    qkv_out = qkv(tokens).view(s, l, 3, num_heads, d // num_heads)
    if bias is not None:
        bias = bias.to(qkv_out.dtype)
    if inference and l <= _MAX_BMM_TOKENS and s >= _MIN_BMM_SEQUENCES:
        return proj(_attend_per_head(qkv_out, scale, bias))
    q, k, v = qkv_out.permute(2, 0, 3, 1, 4).unbind(0)       # S, heads, L, hd
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias, dropout_p=attn_drop, scale=scale)
    return proj(out.transpose(1, 2).reshape(s, l, d))


#: Up to this many tokens per sequence and from this many sequences on, CPU
#: inference attends head by head with batched matrix products on strided
#: views of the q/k/v projection instead of SDPA: for IPSA's 49-token
#: patches 1.3x faster at CAT-S's stages 1-3 (800x1344), 1.03x at stage 4;
#: for 96 tokens 1.1x; at 200 tokens or more SDPA wins, and for fewer than
#: 16 sequences the per-head calls cost more than they save (1 patch of 24
#: heads: 6x SDPA's time; 224x224 and smaller inputs).
_MAX_BMM_TOKENS = 128
_MIN_BMM_SEQUENCES = 16


def _attend_per_head(qkv: torch.Tensor,
                     scale: float,
                     bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``softmax(q k^T * scale + bias) v`` without dropout, one head at a time.

    Args:
        qkv: (S, L, 3, heads, hd), the q/k/v projection viewed by head.
        bias: (1, heads, L, L) or None.

    Returns:
        (S, L, heads * hd), heads concatenated as the output projection
        expects.
    """
    s, l, _, num_heads, hd = qkv.shape
    out = qkv.new_empty(s, l, num_heads, hd)
    for h in range(num_heads):
        q, k, v = qkv[:, :, 0, h], qkv[:, :, 1, h], qkv[:, :, 2, h]  # S, L, hd
        if bias is None:
            attn = torch.bmm(q, k.transpose(1, 2)).mul_(scale)
        else:
            attn = torch.baddbmm(bias[0, h].expand(s, l, l), q,
                                 k.transpose(1, 2), alpha=scale)
        torch.softmax(attn, -1, out=attn)
        out[:, :, h] = torch.bmm(attn, v)
    return out.view(s, l, num_heads * hd)


def _attend_in_chunks(module: nn.Module,
                      attend: Callable[[torch.Tensor, bool], torch.Tensor],
                      tokens: torch.Tensor) -> torch.Tensor:
    """``attend(tokens, inference)``, ``inference`` telling whether this is
    CPU inference; then over chunks of the independent sequences (dim 0)
    sized so that their q, k and v stay in cache. Same result as one call."""
    if not fast_path.cpu_inference(module, tokens):
        return attend(tokens, False)
    step = fast_path.rows_per_chunk(
        3 * tokens[0].numel() * tokens.element_size(), tokens.shape[0])
    if step >= tokens.shape[0]:
        return attend(tokens, True)
    out = torch.empty_like(tokens)
    for i in range(0, tokens.shape[0], step):
        out[i:i + step] = attend(tokens[i:i + step], True)
    return out


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
        """(B, H, W, C) -> (B, H, W, C).

        CPU inference runs over bands of patch rows sized to keep their q, k
        and v in cache (patches are independent: same result).
        """
        if fast_path.cpu_inference(self, x):
            return self._forward_in_bands(x)
        return self._attend_map(x, inference=False)

    def _forward_in_bands(self, x: torch.Tensor) -> torch.Tensor:
        """CPU inference of :meth:`forward`, one band of patch rows at a time:
        padding, partition, attention and reverse of a band stay in cache,
        and no map-sized temporaries are made besides the output (at CAT-S's
        stage 1 at 800x1344 the pad, partition, chunk output and reverse of
        the whole map were 4 x 26 MB of memory traffic per block)."""
        b, h, w, c = x.shape
        n = self.patch_size
        rows, cols = -(-h // n), -(-w // n)                   # patch grid
        per_patch = 3 * n * n * c * x.element_size()          # its q, k, v
        band = max(1, fast_path.rows_per_chunk(
            per_patch, b * rows * cols) // (b * cols))        # patch rows
        if band >= rows:
            return self._attend_map(x, inference=True)
        out = None
        for top in range(0, h, band * n):
            part = self._attend_map(x[:, top:top + band * n], inference=True)
            if out is None:
                out = x.new_empty(b, h, w, c, dtype=part.dtype)
            out[:, top:top + band * n] = part
        return out

    def _attend_map(self, x: torch.Tensor, inference: bool) -> torch.Tensor:
        """(B, h, w, C) -> (B, h, w, C): pad, partition, attend, reverse,
        crop; ``inference``: CPU inference's kernels."""
        _, h, w, _ = x.shape
        x = pad_to_multiple(x, self.patch_size)
        hw = x.shape[1:3]
        tokens = patch_partition(x, self.patch_size)          # B*nP, N*N, C
        x = patch_reverse(self._attend(tokens, inference), self.patch_size,
                          hw)
        return x[:, :h, :w]

    def _attend(self, tokens: torch.Tensor, inference: bool) -> torch.Tensor:
        """(S, N*N, C) patches -> (S, N*N, C)."""
        out = _multi_head_attention(
            self.qkv, self.proj, tokens, self.num_heads, self.scale,
            self.attn_drop_rate if self.training else 0.,
            self.relative_position_bias().unsqueeze(0), inference)
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
        """(B, H, W, C) -> (B, H, W, C).

        CPU inference attends over chunks of channels sized to keep their
        q, k and v in cache (channels are independent sequences: same
        result).
        """
        _, h, w, c = x.shape
        x = pad_to_multiple(x, self.patch_size)
        hw = x.shape[1:3]
        tokens = channel_patch_partition(x, self.patch_size)  # B*C, nP, N*N
        out = _attend_in_chunks(self, self._attend, tokens)
        x = channel_patch_reverse(out, self.patch_size, hw, c)
        return x[:, :h, :w]

    def _attend(self, tokens: torch.Tensor, inference: bool) -> torch.Tensor:
        """(S, nP, N*N) channel sequences -> (S, nP, N*N)."""
        out = _multi_head_attention(
            self.qkv, self.proj, tokens, self.num_heads, self.scale,
            self.attn_drop_rate if self.training else 0.,
            inference=inference)
        return self.proj_drop(out)

    def extra_repr(self) -> str:
        return f'patch_size={self.patch_size}, num_heads={self.num_heads}'
