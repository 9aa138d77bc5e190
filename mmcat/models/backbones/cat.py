"""CAT: Cross Attention in Vision Transformer (arXiv 2106.05786), as a
hierarchical backbone for MMDetection and MMSegmentation.

Data order: patch embedding -> absolute position encoding -> 4 stages of Cross
Attention Blocks, a patch projection between stages -> one norm per output.
Blocks work on channels-last maps and read H, W from the tensor: nothing
spatial is stored on modules, so any input size works.
"""
import os.path as osp
import pickle
from collections import OrderedDict
from copy import deepcopy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import trunc_normal_
from mmengine.runner.checkpoint import CheckpointLoader

from ...engine.checkpoint_compat import register_mmengine_safe_globals
from ...registry import MODELS
from ..layers import cpu_inference as cpu_kernels
from ..layers.blocks import CrossAttentionBlock
from ..layers.cpu_inference import CPUInferencePolicy
from ..layers.embed import PatchEmbed, PatchProjection
from ..layers.resize import bicubic_resize_nhwc
from ..utils.ckpt_convert import cat_converter, embedding_conv_to
from ..utils.foreign_checkpoints import register_foreign_config_stand_ins


class CATStage(BaseModule):
    """``depth`` Cross Attention Blocks, then an optional patch projection.

    Args:
        embed_dims: channels C of the stage.
        depth: number of CABs.
        num_heads: IPSA heads.
        drop_path_rates: one stochastic-depth rate per CAB.
        downsample: append a patch projection C -> 2C.
        projection_conv_cfg: conv config of the projection's reduction.
        block_cfg: remaining :class:`CrossAttentionBlock` arguments.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 embed_dims: int,
                 depth: int,
                 num_heads: int,
                 drop_path_rates: Sequence[float],
                 downsample: bool = True,
                 projection_conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **block_cfg) -> None:
        super().__init__(init_cfg=init_cfg)
        assert len(drop_path_rates) == depth
        self.blocks = ModuleList([
            CrossAttentionBlock(embed_dims, num_heads, drop_path_rate=rate,
                                norm_cfg=norm_cfg, **block_cfg)
            for rate in drop_path_rates
        ])
        self.downsample = (PatchProjection(
            embed_dims, 2 * embed_dims, conv_cfg=projection_conv_cfg,
            norm_cfg=norm_cfg) if downsample else None)

    def forward(self, x: torch.Tensor
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(B, H, W, C) -> stage output (B, H, W, C) and the projected
        (B, ceil(H/2), ceil(W/2), 2C) input of the next stage (or None)."""
        for block in self.blocks:
            x = block(x)
        return x, (self.downsample(x) if self.downsample is not None else None)


@MODELS.register_module()
class CAT(BaseModule):
    """CAT backbone.

    Args:
        arch: 'tiny', 'small', 'base', or a dict with ``embed_dims`` (C_1),
            ``depths`` (CABs per stage) and ``num_heads`` (IPSA heads per
            stage), optionally ``drop_path_rate``.
        in_channels: input image channels.
        patch_size: N, the patch size of IPSA and CPSA.
        embed_patch_size: stride P of the patch embedding.
        cpsa_num_heads: CPSA heads (1 in the paper; must divide N*N).
        mlp_ratio: MLP hidden width over C.
        qkv_bias: add a bias to q, k, v.
        qk_scale: overrides ``head_dim ** -0.5``.
        drop_rate: dropout after embedding, projections and in MLPs.
        attn_drop_rate: dropout on attention weights.
        drop_path_rate: stochastic depth, rising linearly over all CABs
            (``None``: the arch's value).
        use_abs_pos_embed: add the learned absolute position encoding.
        pretrain_img_size: image size the position table was learned at; the
            table is (1, C_1, size/P, size/P) and is resized to each input.
        out_indices: stages whose (normalised) outputs are returned.
        frozen_stages: freeze the patch embedding (>= 0) and the first
            ``frozen_stages`` stages with their outputs' norms; -1: none.
        with_cp: gradient checkpointing of every attention block.
        ffn_with_cp: recompute only the MLPs in backward (selective
            activation recomputation: most of a block's activation memory for
            a third of its forward multiply-adds). Ignored under ``with_cp``.
        act_with_cp: keep only the input of each MLP's activation for
            backward and compute its output again there (one 4C-wide tensor
            less per block for one more pass of the activation; same
            gradients). On by default; False keeps both.
        norm_cfg: norm config (LayerNorm over channels).
        act_cfg: MLP activation config.
        embed_conv_cfg: conv config of the patch embedding (``None``: Conv2d).
            A checkpoint's 4x4 stride-4 conv loads into ``SliceConv2d``
            exactly (and back); into any other form it cannot be mapped and
            loading it is an error unless ``fresh_embed_conv``.
        fresh_embed_conv: when loading a pretrained checkpoint, leave the
            patch-embedding convolution as initialised and ignore the file's
            (for an ``embed_conv_cfg`` that the pretrained convolution does
            not map onto, e.g. ``DepthwiseSeparableConv2d``); every other
            tensor still loads.
        projection_conv_cfg: conv config of the patch projections' reduction.
        cpu_inference: run eval-mode, no-grad forwards on the CPU through
            the cache-sized kernels of
            :mod:`~mmcat.models.layers.cpu_inference` (same results as the
            plain path): True (default policy), a dict of
            :class:`~mmcat.models.layers.cpu_inference.CPUInferencePolicy`
            fields, or False (always the plain path).
        pretrained: shorthand for ``init_cfg=dict(type='Pretrained',
            checkpoint=pretrained)`` (MMSegmentation's segmentors pass their
            ``pretrained`` down to the backbone).
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads mmcat or
            CAT-authors checkpoints (converted on the fly); otherwise a
            truncated-normal initialisation.

    Shapes:
        input (B, in_channels, H, W), any H, W >= 1; output i is
        (B, C_1 * 2**i, ceil(H / (P * 2**i)), ceil(W / (P * 2**i))).
    """

    arch_zoo: Dict[str, dict] = {
        'tiny': dict(embed_dims=64, depths=(1, 1, 3, 1),
                     num_heads=(2, 4, 8, 16), drop_path_rate=0.1),
        'small': dict(embed_dims=96, depths=(1, 1, 3, 1),
                      num_heads=(3, 6, 12, 24), drop_path_rate=0.2),
        'base': dict(embed_dims=96, depths=(1, 1, 6, 1),
                     num_heads=(3, 6, 12, 24), drop_path_rate=0.3),
    }
    arch_aliases = {'t': 'tiny', 's': 'small', 'b': 'base'}

    def __init__(self,
                 arch: Union[str, dict] = 'small',
                 in_channels: int = 3,
                 patch_size: int = 7,
                 embed_patch_size: int = 4,
                 cpsa_num_heads: int = 1,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: Optional[float] = None,
                 use_abs_pos_embed: bool = True,
                 pretrain_img_size: int = 224,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 ffn_with_cp: bool = False,
                 act_with_cp: bool = True,
                 norm_cfg: dict = dict(type='LN'),
                 act_cfg: dict = dict(type='GELU'),
                 embed_conv_cfg: Optional[dict] = None,
                 projection_conv_cfg: Optional[dict] = None,
                 fresh_embed_conv: bool = False,
                 cpu_inference: Union[bool, dict] = True,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('CAT: set either init_cfg or pretrained, '
                                 'not both')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        arch = self._parse_arch(arch)
        embed_dims, depths, num_heads = (arch['embed_dims'], arch['depths'],
                                         arch['num_heads'])
        if drop_path_rate is None:
            drop_path_rate = arch.get('drop_path_rate', 0.)
        num_stages = len(depths)
        self._check_args(embed_dims, depths, num_heads, in_channels,
                         patch_size, embed_patch_size, out_indices,
                         frozen_stages, drop_path_rate)
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.num_stages = num_stages
        self.out_indices = tuple(i % num_stages for i in out_indices)
        self.frozen_stages = frozen_stages
        self.use_abs_pos_embed = use_abs_pos_embed
        self.embed_conv_cfg = deepcopy(embed_conv_cfg)
        self.fresh_embed_conv = fresh_embed_conv
        self.num_features = [embed_dims * 2**i for i in range(num_stages)]
        self.cpu_inference: Optional[CPUInferencePolicy] = (
            CPUInferencePolicy(**cpu_inference)
            if isinstance(cpu_inference, dict) else
            CPUInferencePolicy() if cpu_inference else None)

        self.patch_embed = PatchEmbed(in_channels, embed_dims,
                                      embed_patch_size, embed_conv_cfg,
                                      norm_cfg)
        if use_abs_pos_embed:
            grid = pretrain_img_size // embed_patch_size
            self.absolute_pos_embed = nn.Parameter(
                torch.zeros(1, embed_dims, grid, grid))
        self.drop_after_pos = nn.Dropout(drop_rate)

        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = ModuleList()
        for i, depth in enumerate(depths):
            self.stages.append(CATStage(
                self.num_features[i], depth, num_heads[i],
                drop_path_rates=rates[sum(depths[:i]):sum(depths[:i + 1])],
                downsample=i < num_stages - 1,
                projection_conv_cfg=projection_conv_cfg,
                norm_cfg=norm_cfg,
                patch_size=patch_size, cpsa_num_heads=cpsa_num_heads,
                mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, qk_scale=qk_scale,
                drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                act_cfg=act_cfg, with_cp=with_cp, ffn_with_cp=ffn_with_cp,
                act_with_cp=act_with_cp))
        for i in self.out_indices:
            self.add_module(f'norm{i}',
                            build_norm_layer(norm_cfg, self.num_features[i])[1])
        self._freeze_stages()

    # ------------------------------------------------------------------ args
    @classmethod
    def _parse_arch(cls, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            name = cls.arch_aliases.get(arch.lower(), arch.lower())
            if name not in cls.arch_zoo:
                raise ValueError(
                    f'CAT: unknown arch {arch!r}; choose one of '
                    f'{sorted(cls.arch_zoo)} (or t/s/b), or give a dict with '
                    f'embed_dims, depths and num_heads')
            return deepcopy(cls.arch_zoo[name])
        if not isinstance(arch, dict):
            raise TypeError(f'CAT: arch must be a str or dict, got '
                            f'{type(arch).__name__}')
        missing = {'embed_dims', 'depths', 'num_heads'} - set(arch)
        if missing:
            raise ValueError(f'CAT: a custom arch dict needs the keys '
                             f'{sorted(missing)}; got {sorted(arch)}')
        return dict(arch)

    @staticmethod
    def _check_args(embed_dims, depths, num_heads, in_channels, patch_size,
                    embed_patch_size, out_indices, frozen_stages,
                    drop_path_rate) -> None:
        num_stages = len(depths)
        if num_stages < 1 or len(num_heads) != num_stages:
            raise ValueError(
                f'CAT: depths ({list(depths)}) and num_heads '
                f'({list(num_heads)}) must be non-empty and of equal length')
        if any(d < 1 for d in depths):
            raise ValueError(f'CAT: every stage depth must be >= 1, got '
                             f'{list(depths)}')
        for i, heads in enumerate(num_heads):
            width = embed_dims * 2**i
            if heads < 1 or width % heads:
                raise ValueError(
                    f'CAT: stage {i} width embed_dims*2**{i} = {width} must '
                    f'be divisible by num_heads[{i}] = {heads}')
        if in_channels < 1:
            raise ValueError(f'CAT: in_channels must be >= 1, got '
                             f'{in_channels}')
        if patch_size < 1:
            raise ValueError(f'CAT: patch_size must be >= 1, got {patch_size}')
        if embed_patch_size < 1:
            raise ValueError(f'CAT: embed_patch_size must be >= 1, got '
                             f'{embed_patch_size}')
        for i in out_indices:
            if not -num_stages <= i < num_stages:
                raise ValueError(
                    f'CAT: out_indices {tuple(out_indices)} has {i}, outside '
                    f'[0, {num_stages - 1}] (or [-{num_stages}, -1])')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(
                f'CAT: frozen_stages must be in [-1, {num_stages}] (-1 '
                f'freezes nothing), got {frozen_stages}')
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f'CAT: drop_path_rate must be in [0, 1), got '
                             f'{drop_path_rate}')

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f'CAT expects a torch.Tensor, got '
                            f'{type(x).__name__}')
        if x.dim() != 4:
            raise ValueError(f'CAT expects a 4-D (B, C, H, W) tensor, got '
                             f'shape {tuple(x.shape)}')
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f'CAT was built with in_channels={self.in_channels} but the '
                f'input has {x.shape[1]} channels (shape {tuple(x.shape)})')
        if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            raise ValueError(f'CAT got an empty input of shape '
                             f'{tuple(x.shape)}')
        if not x.is_floating_point():
            raise TypeError(f'CAT expects a floating-point input, got '
                            f'{x.dtype}; convert images with .float()')

    # --------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """(B, in_channels, H, W) -> tuple of (B, C_i, H_i, W_i), one per
        ``out_indices``."""
        self._check_input(x)
        policy = cpu_kernels.policy_for(self, x)
        x = self.patch_embed(x)                                 # B, h, w, C
        if self.use_abs_pos_embed:
            x = x + self.resized_pos_embed(x.shape[1:3]).to(x.dtype)
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            out, x = (stage(x) if policy is None else
                      cpu_kernels.stage_forward(stage, x, policy))
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                outs.append(out.permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def resized_pos_embed(self, hw: Tuple[int, int]) -> torch.Tensor:
        """The position table resized bicubically to ``hw``: (1, h, w, C)."""
        pos = self.absolute_pos_embed
        if tuple(pos.shape[2:]) == tuple(hw):
            return pos.permute(0, 2, 3, 1)
        return bicubic_resize_nhwc(pos, tuple(hw))

    # -------------------------------------------------------------- freezing
    def _frozen_modules(self) -> List[nn.Module]:
        mods: List[nn.Module] = []
        if self.frozen_stages >= 0:
            mods.append(self.patch_embed)
        for i in range(self.frozen_stages):
            mods.append(self.stages[i])
            if i in self.out_indices:
                mods.append(getattr(self, f'norm{i}'))
        return mods

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0 and self.use_abs_pos_embed:
            self.absolute_pos_embed.requires_grad = False
        for m in self._frozen_modules():
            m.eval()
            for param in m.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'CAT':
        """Set train mode but keep frozen parts in eval mode and frozen."""
        super().train(mode)
        self._freeze_stages()
        return self

    # ---------------------------------------------------------- initialising
    def init_weights(self) -> None:
        """Truncated-normal init, or load ``init_cfg.checkpoint``."""
        if self.init_cfg is None or self.init_cfg.get('type') != 'Pretrained':
            super().init_weights()
            self._init_fresh()
            return
        path = self.init_cfg.get('checkpoint')
        if not path:
            raise ValueError('CAT: init_cfg of type Pretrained needs a '
                             '"checkpoint" (a path or URL)')
        if '://' not in str(path) and not osp.isfile(path):
            raise FileNotFoundError(
                f'CAT: pretrained checkpoint {path!r} not found. Put the '
                f'ImageNet weights there (the authors\' file or one made by '
                f'tools/model_converters/cat2mmcat.py), point '
                f'model.backbone.init_cfg.checkpoint at them, or train from '
                f'scratch with model.backbone.init_cfg=None')
        # weights-only loading of the files CAT reads: the authors' (with
        # their pickled yacs config) and mmengine's own (training state)
        register_foreign_config_stand_ins()
        register_mmengine_safe_globals()
        try:
            ckpt = CheckpointLoader.load_checkpoint(path, logger='current',
                                                    map_location='cpu')
        except pickle.UnpicklingError as e:
            if 'Weights only load failed' not in str(e):
                raise
            # torch's own advice (allow-list the global it names, or turn
            # weights_only off) is how arbitrary code gets run: say instead
            # what the file is and how to take the weights out of it once.
            reason = ' '.join(str(e).split('WeightsUnpickler error:')[-1]
                              .split('Check the documentation')[0]
                              .split(' Please use')[0].split())
            raise pickle.UnpicklingError(
                f'CAT: refused to load the pretrained checkpoint {path!r}: '
                f'it holds code or objects outside the weights-only '
                f'allow-list (or is not a checkpoint at all), and unpickling '
                f'it could run code. If you trust its source, keep its '
                f'tensors once with\n'
                f'    python tools/model_converters/cat2mmcat.py '
                f'--unsafe-trust-source {path} CLEAN.pth\n'
                f'and point init_cfg.checkpoint at CLEAN.pth (or load it '
                f'yourself with torch.load(..., weights_only=False) and save '
                f'its state dict). torch\'s weights-only unpickler: '
                f'{reason}') from e
        self.load_pretrained(ckpt, source=str(path))

    def _init_fresh(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.use_abs_pos_embed:
            trunc_normal_(self.absolute_pos_embed, std=.02)

    def load_pretrained(self, checkpoint: dict, source: str = 'checkpoint',
                        min_match: float = 0.5) -> Tuple[List[str], List[str]]:
        """Load an mmcat or CAT-authors checkpoint (any wrapping) into self.

        Keys are converted to mmcat's layout, the position table is resized
        to this model's, a patch-embedding convolution is mapped onto this
        model's form where it maps exactly (k x k stride-k conv <->
        ``SliceConv2d``), and missing / unexpected keys are reported by name.
        With ``fresh_embed_conv`` the file's patch-embedding convolution is
        ignored and this model's is neither loaded nor reported missing.

        Raises:
            RuntimeError: when fewer than ``min_match`` of this model's
                parameters find a tensor of the right shape in the file, or
                when the file's patch-embedding convolution cannot be mapped
                onto ``embed_conv_cfg`` (and ``fresh_embed_conv`` is off).

        Returns:
            (missing keys, unexpected keys).
        """
        state = cat_converter(checkpoint)
        if self.fresh_embed_conv:
            state = OrderedDict((k, v) for k, v in state.items()
                                if not k.startswith(_EMBED_CONV))
        else:
            state = embedding_conv_to(state, self.patch_embed.proj,
                                      _EMBED_CONV)
        own = self.state_dict()
        if self.use_abs_pos_embed and 'absolute_pos_embed' in state:
            pos = state['absolute_pos_embed']
            target = own['absolute_pos_embed'].shape
            if pos.dim() == 4 and pos.shape[:2] == target[:2] and \
                    pos.shape != target:
                state['absolute_pos_embed'] = F.interpolate(
                    pos.float(), size=tuple(target[2:]), mode='bicubic',
                    align_corners=False)
        mismatched = [k for k in state if k in own and
                      state[k].shape != own[k].shape]
        loadable = OrderedDict((k, v) for k, v in state.items()
                               if k in own and k not in mismatched)
        missing = [k for k in own if k not in loadable and not (
            self.fresh_embed_conv and k.startswith(_EMBED_CONV))]
        unexpected = [k for k in state if k not in own]
        if len(loadable) < min_match * len(own):
            raise RuntimeError(
                f'{source} does not look like a CAT checkpoint for this '
                f'model: only {len(loadable)} of {len(own)} tensors match. '
                f'Missing: {_short(missing)}; unexpected: '
                f'{_short(unexpected)}; wrong shape: {_short(mismatched)}')
        self._check_embedding_loads(state, own, loadable, source)
        self.load_state_dict(loadable, strict=False)
        if missing or unexpected or mismatched:
            print_log(
                f'CAT: loaded {len(loadable)}/{len(own)} tensors from '
                f'{source}. Missing (left initialised): {missing}; '
                f'unexpected (ignored): {unexpected}; wrong shape (ignored): '
                f'{mismatched}', logger='current', level=30)
        return missing + mismatched, unexpected

    def _check_embedding_loads(self, state: Dict[str, torch.Tensor],
                               own: Dict[str, torch.Tensor],
                               loadable: Dict[str, torch.Tensor],
                               source: str) -> None:
        """Raise if the file has a patch-embedding convolution that does not
        load into this model's (a random embedding under pretrained weights
        would go unnoticed behind a warning)."""
        foreign = [k for k in state
                   if k.startswith(_EMBED_CONV) and k not in loadable]
        if not foreign:
            return

        def shapes(d: Dict[str, torch.Tensor]) -> str:
            return ', '.join(f'{k} {tuple(v.shape)}' for k, v in d.items()
                             if k.startswith(_EMBED_CONV))

        raise RuntimeError(
            f'CAT: the patch-embedding convolution of {source} '
            f'({shapes(state)}) cannot be mapped onto this model\'s '
            f'embed_conv_cfg={self.embed_conv_cfg!r} ({shapes(own)}). '
            f'Build the embedding '
            f'the file was trained with (embed_conv_cfg=None for its k x k '
            f'stride-k conv, or SliceConv2d, which loads it exactly), or set '
            f'model.backbone.fresh_embed_conv=True to train this embedding '
            f'convolution from scratch and load the rest of the file.')


#: State-dict prefix of the patch embedding's convolution.
_EMBED_CONV = 'patch_embed.proj.'


def _short(keys: List[str], n: int = 8) -> str:
    return str(keys[:n] + ([f'... {len(keys) - n} more'] if len(keys) > n
                           else []))
