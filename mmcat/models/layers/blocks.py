"""Pre-norm transformer block and CAT's Cross Attention Block (CAB)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from .attention import CrossPatchAttention, InnerPatchAttention
from .drop import DropPath
from .mlp import Mlp


class AttentionBlock(BaseModule):
    """``x + DropPath(attn(LN(x)))``, then ``x + DropPath(MLP(LN(x)))``.

    Args:
        embed_dims: channels C.
        attn: the token mixer, a module mapping (B, H, W, C) -> (B, H, W, C).
        mlp_ratio: hidden width of the MLP over C.
        drop_rate: dropout inside the MLP.
        drop_path_rate: stochastic depth rate of both residual branches.
        norm_cfg: norm config (mmcv), applied over the last (channel) axis.
        act_cfg: activation config of the MLP.
        with_cp: recompute the whole block in backward (gradient
            checkpointing): only its input is kept.
        ffn_with_cp: recompute ``MLP(LN(x))`` in backward instead of keeping
            its activations (the norm's output, the 4C-wide hidden layer
            before and after the activation): most of a block's activation
            memory for a third of its forward multiply-adds.
        act_with_cp: recompute only the MLP's activation in backward (keep
            its 4C-wide input, not also its output; see :class:`Mlp`).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 embed_dims: int,
                 attn: nn.Module,
                 mlp_ratio: float = 4.,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 ffn_with_cp: bool = False,
                 act_with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        self.ffn_with_cp = ffn_with_cp and not with_cp
        norm_cfg = norm_cfg or dict(type='LN')
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = attn
        self.drop_path = (DropPath(drop_path_rate) if drop_path_rate > 0
                          else nn.Identity())
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), act_cfg,
                       drop_rate, act_with_cp=act_with_cp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        if self.ffn_with_cp and x.requires_grad:
            return x + self.drop_path(
                cp.checkpoint(self.ffn, x, use_reentrant=False))
        return x + self.drop_path(self.ffn(x))

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        """``MLP(LN(x))``: (..., C) -> (..., C)."""
        return self.mlp(self.norm2(x))


class CrossAttentionBlock(BaseModule):
    """CAB: IPSA block -> CPSA block -> IPSA block, one drop-path rate for all.

    Args:
        embed_dims: channels C.
        num_heads: IPSA heads.
        patch_size: N, the patch size of both attentions.
        cpsa_num_heads: CPSA heads (1 in the paper).
        mlp_ratio: hidden width of the MLPs over C.
        qkv_bias: add a bias to q, k, v.
        qk_scale: overrides ``head_dim ** -0.5``.
        drop_rate: dropout after projections and inside MLPs.
        attn_drop_rate: dropout on the attention weights.
        drop_path_rate: stochastic depth rate of this CAB.
        norm_cfg: norm config (mmcv).
        act_cfg: activation config of the MLPs.
        with_cp: recompute each of its three blocks in backward (gradient
            checkpointing, one attention block at a time: the peak of one
            block's activations instead of three).
        ffn_with_cp: recompute only the MLPs of its three blocks in backward
            (see :class:`AttentionBlock`); ignored under ``with_cp``.
        act_with_cp: recompute only the MLPs' activations in backward.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 patch_size: int = 7,
                 cpsa_num_heads: int = 1,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 ffn_with_cp: bool = False,
                 act_with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        common = dict(mlp_ratio=mlp_ratio, drop_rate=drop_rate,
                      drop_path_rate=drop_path_rate, norm_cfg=norm_cfg,
                      act_cfg=act_cfg, with_cp=with_cp,
                      ffn_with_cp=ffn_with_cp, act_with_cp=act_with_cp)
        attn_args = dict(patch_size=patch_size, qkv_bias=qkv_bias,
                         qk_scale=qk_scale, attn_drop_rate=attn_drop_rate,
                         proj_drop_rate=drop_rate)
        self.pre_ipsa = AttentionBlock(
            embed_dims, InnerPatchAttention(embed_dims, num_heads, **attn_args),
            **common)
        self.cpsa = AttentionBlock(
            embed_dims, CrossPatchAttention(num_heads=cpsa_num_heads,
                                            **attn_args), **common)
        self.post_ipsa = AttentionBlock(
            embed_dims, InnerPatchAttention(embed_dims, num_heads, **attn_args),
            **common)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        return self.post_ipsa(self.cpsa(self.pre_ipsa(x)))
