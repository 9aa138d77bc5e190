"""A straightforward transcription of the CAT paper, in the authors' layout.

This is the yardstick of mmcat's tests and benchmarks: tokens are (B, L, C)
sequences with H and W passed along, attention is an explicit
``softmax(q k^T * scale + bias) v``, and every reshape is written out the way
the paper's equations read. Module and parameter names follow the authors'
code, so ``state_dict()`` of :class:`ReferenceCAT` is a checkpoint in the
authors' layout (classification or detection flavour, see
:mod:`mmcat.models.utils.ckpt_convert`).
It shares no code with ``mmcat.models``.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def _pad_hw(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """(B, H, W, C) zero-padded right/bottom to multiples of ``multiple``."""
    h, w = x.shape[1:3]
    return F.pad(x, (0, 0, 0, (multiple - w % multiple) % multiple,
                     0, (multiple - h % multiple) % multiple))


class Mlp(nn.Module):

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention over (S, L, D) with an optional Swin-style
    relative position bias for L = N*N pixel tokens."""

    def __init__(self, dim: int, num_heads: int, patch_size: int,
                 rpe: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.rpe = rpe
        n = patch_size
        if rpe:
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros((2 * n - 1) * (2 * n - 1), num_heads))
            coords = torch.stack(torch.meshgrid(
                torch.arange(n), torch.arange(n), indexing='ij'))
            coords = coords.flatten(1)
            rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
            rel = rel.contiguous()
            rel[:, :, 0] += n - 1
            rel[:, :, 1] += n - 1
            rel[:, :, 0] *= 2 * n - 1
            self.register_buffer('relative_position_index', rel.sum(-1))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, l, d = x.shape
        qkv = self.qkv(x).reshape(s, l, 3, self.num_heads,
                                  d // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if self.rpe:
            bias = self.relative_position_bias_table[
                self.relative_position_index.view(-1)].view(l, l, -1)
            attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(s, l, d))


class Block(nn.Module):
    """IPSA or CPSA block, Eq. 7-12: pre-norm attention and MLP residuals."""

    def __init__(self, dim: int, num_heads: int, patch_size: int,
                 attn_type: str) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.attn_type = attn_type
        self.norm1 = nn.LayerNorm(dim)
        if attn_type == 'ipsa':
            self.attn = Attention(dim, num_heads, patch_size, rpe=True)
        else:
            self.attn = Attention(patch_size**2, 1, patch_size, rpe=False)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = x.shape
        n = self.patch_size
        shortcut = x
        y = _pad_hw(self.norm1(x).view(b, h, w, c), n)
        hp, wp = y.shape[1:3]
        nh, nw = hp // n, wp // n
        # partition into patches: (B * nP, N, N, C)
        patches = y.view(b, nh, n, nw, n, c).permute(0, 1, 3, 2, 4, 5)
        patches = patches.contiguous().view(-1, n * n, c)
        if self.attn_type == 'ipsa':
            out = self.attn(patches)                      # B*nP, NN, C
        else:
            tokens = patches.view(b, nh * nw, n * n, c).permute(0, 3, 1, 2)
            tokens = tokens.contiguous().view(-1, nh * nw, n * n)
            out = self.attn(tokens).view(b, c, nh * nw, n * n)
            out = out.permute(0, 2, 3, 1).contiguous().view(-1, n * n, c)
        # reverse the partition and crop the padding
        out = out.view(b, nh, nw, n, n, c).permute(0, 1, 3, 2, 4, 5)
        out = out.contiguous().view(b, hp, wp, c)[:, :h, :w, :]
        x = shortcut + out.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class PatchProjection(nn.Module):

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = x.shape
        x = _pad_hw(x.view(b, h, w, c), 2)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2],
                       x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class Layer(nn.Module):

    def __init__(self, dim: int, depth: int, num_heads: int, patch_size: int,
                 downsample: bool) -> None:
        super().__init__()
        self.pre_ipsa_blocks = nn.ModuleList(
            [Block(dim, num_heads, patch_size, 'ipsa') for _ in range(depth)])
        self.cpsa_blocks = nn.ModuleList(
            [Block(dim, num_heads, patch_size, 'cpsa') for _ in range(depth)])
        self.post_ipsa_blocks = nn.ModuleList(
            [Block(dim, num_heads, patch_size, 'ipsa') for _ in range(depth)])
        self.downsample = PatchProjection(dim) if downsample else None

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        for pre, cpsa, post in zip(self.pre_ipsa_blocks, self.cpsa_blocks,
                                   self.post_ipsa_blocks):
            x = post(cpsa(pre(x, h, w), h, w), h, w)
        return x


class PatchEmbed(nn.Module):

    def __init__(self, dim: int, patch: int = 4) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(3, dim, patch, patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        p = self.patch
        x = F.pad(x, (0, (p - w % p) % p, 0, (p - h % p) % p))
        x = self.proj(x)                                    # B, C, h, w
        b, c, h, w = x.shape
        x = self.norm(x.flatten(2).transpose(1, 2))
        return x.transpose(1, 2).view(b, c, h, w)


class ReferenceCAT(nn.Module):
    """CAT in the authors' layout.

    Args:
        embed_dims: C_1.
        depths, num_heads: per stage.
        patch_size: N.
        classification: the ImageNet flavour (``ape`` (1, 3136, C), a final
            ``norm`` and a ``head``); otherwise the detection flavour (``ape``
            (1, C, 56, 56), ``norm0``..``norm3``).
    """

    def __init__(self, embed_dims: int = 96,
                 depths: Sequence[int] = (1, 1, 3, 1),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 patch_size: int = 7, classification: bool = False,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self.classification = classification
        self.patch_embed = PatchEmbed(embed_dims)
        if classification:
            self.ape = nn.Parameter(torch.zeros(1, 56 * 56, embed_dims))
        else:
            self.ape = nn.Parameter(torch.zeros(1, embed_dims, 56, 56))
        self.num_layers = len(depths)
        self.layers = nn.ModuleList([
            Layer(embed_dims * 2**i, depths[i], num_heads[i], patch_size,
                  downsample=i < len(depths) - 1) for i in range(len(depths))
        ])
        last = embed_dims * 2**(len(depths) - 1)
        if classification:
            self.norm = nn.LayerNorm(last)
            self.head = nn.Linear(last, num_classes)
        else:
            for i in range(len(depths)):
                self.add_module(f'norm{i}', nn.LayerNorm(embed_dims * 2**i))

    def randomize_(self, seed: int = 0) -> 'ReferenceCAT':
        """Fill every parameter with random values (norms included), so that
        a comparison exercises every weight."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 1 and 'norm' in name and name.endswith('weight'):
                    p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.05 * torch.randn(p.shape, generator=g))
        return self

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """(B, 3, H, W) -> per-stage normalised maps (B, C_i, H_i, W_i); in
        the classification flavour, the last stage only."""
        x = self.patch_embed(x)
        b, c, h, w = x.shape
        if self.classification:
            x = x.flatten(2).transpose(1, 2) + self.ape     # 224x224 only
        else:
            ape = F.interpolate(self.ape, size=(h, w), mode='bicubic',
                                align_corners=False)
            x = (x + ape).flatten(2).transpose(1, 2)
        outs = []
        for i, layer in enumerate(self.layers):
            y = layer(x, h, w)
            if not self.classification:
                out = getattr(self, f'norm{i}')(y)
                outs.append(out.view(b, h, w, -1).permute(0, 3, 1, 2))
            elif i == self.num_layers - 1:
                out = self.norm(y)
                outs.append(out.view(b, h, w, -1).permute(0, 3, 1, 2))
            if layer.downsample is not None:
                x = layer.downsample(y, h, w)
                h, w = (h + 1) // 2, (w + 1) // 2
        return outs

    def forward_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(self(x))
