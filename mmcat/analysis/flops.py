"""Counting the multiply-adds (attention included) and parameters of CAT
models.

mmengine's :class:`~mmengine.analysis.FlopAnalyzer` (fvcore-style) traces a
model and counts one multiply-add as one "flop", the convention of the CAT
paper's FLOPs. Out of the box it skips ``aten::scaled_dot_product_attention``,
i.e. the ``q k^T`` and ``attn v`` products of IPSA and CPSA; this module adds a
handle for it (and for a few other ops CAT models meet), keeps the per-module
counts and records the map every attention layer sees, so the counts can be
set next to the paper's cost formulas (Eq. 1-3).

Element-wise ops (add, mul, GELU, softmax, exp, ...) stay uncounted, as in
fvcore and in the paper's convention.
"""
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape

from mmcat.models import plain_forward
from mmcat.models.layers.attention import (CrossPatchAttention,
                                           InnerPatchAttention)

Inputs = Union[torch.Tensor, Tuple[torch.Tensor, ...]]

# --------------------------------------------------------- the paper's costs


def msa_macs(h: int, w: int, c: int) -> int:
    """Global multi-head self-attention on an H x W x C map (Eq. 1):
    ``4HWC^2 + 2(HW)^2 C`` multiply-adds."""
    return 4 * h * w * c * c + 2 * (h * w) ** 2 * c


def ipsa_macs(h: int, w: int, c: int, n: int = 7) -> int:
    """Inner-patch self-attention (Eq. 2): ``4HWC^2 + 2N^2 HWC``.

    H and W must already be padded to multiples of N."""
    return 4 * h * w * c * c + 2 * n * n * h * w * c


def cpsa_macs(h: int, w: int, c: int, n: int = 7) -> int:
    """Cross-patch self-attention (Eq. 3): ``4N^2 HWC + 2(HW/N)^2 C``.

    H and W must already be padded to multiples of N (then ``(HW/N)^2`` is
    the integer ``(HW/N^2)^2 N^2``)."""
    num_patches = (h // n) * (w // n)
    return 4 * n * n * h * w * c + 2 * num_patches ** 2 * n * n * c


def padded(size: int, multiple: int) -> int:
    """``size`` rounded up to a multiple of ``multiple``."""
    return -(-size // multiple) * multiple


def stage_map_size(h: int, w: int, stage: int,
                   embed_stride: int = 4) -> Tuple[int, int]:
    """Map size of CAT stage ``stage`` for an H x W input:
    ``ceil(H / 4 / 2^i) x ceil(W / 4 / 2^i)``."""
    stride = embed_stride * 2**stage
    return math.ceil(h / stride), math.ceil(w / stride)


# ------------------------------------------------------------- op handles


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Multiply-adds of ``aten::scaled_dot_product_attention``.

    ``q k^T`` costs ``batch * Lq * Lk * E`` and ``attn v`` costs
    ``batch * Lq * Lk * Ev``, where ``batch`` is the product of q's leading
    dimensions (batch and heads). Scaling, masking and softmax are
    element-wise and not counted.
    """
    q_shape, k_shape, v_shape = (get_shape(v) for v in inputs[:3])
    batch = math.prod(q_shape[:-2])
    lq, e = q_shape[-2:]
    lk, ev = k_shape[-2], v_shape[-1]
    return batch * lq * lk * (e + ev)


def baddbmm_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """``aten::baddbmm(input, b1, b2)``: the batched product ``b1 @ b2``."""
    b, n, k = get_shape(inputs[1])
    m = get_shape(inputs[2])[-1]
    return b * n * k * m


def upsample_flop_counter(taps: int):
    """Interpolation costing ``taps`` multiply-adds per output element
    (4 for bilinear, as mmengine counts it; 16 for bicubic)."""

    def handle(inputs: List[Any], outputs: List[Any]) -> int:
        return taps * math.prod(get_shape(outputs[0]))

    return handle


#: Handles added to (or replacing) mmengine's defaults.
EXTRA_FLOP_HANDLES = {
    'aten::scaled_dot_product_attention': sdpa_flop_jit,
    'aten::_scaled_dot_product_flash_attention': sdpa_flop_jit,
    'aten::_scaled_dot_product_efficient_attention': sdpa_flop_jit,
    'aten::baddbmm': baddbmm_flop_jit,
    'aten::upsample_bicubic2d': upsample_flop_counter(16),
}
#: Memory-only ops mmengine does not list among its ignored ones.
ZERO_COST_OPS = ('aten::pad', 'aten::reflection_pad2d',
                 'aten::replication_pad2d')


def build_flop_analyzer(model: nn.Module, inputs: Inputs,
                        with_attention: bool = True) -> FlopAnalyzer:
    """A quiet :class:`FlopAnalyzer` with the handles of this module.

    Args:
        model: called as ``model(*inputs)`` under ``torch.jit`` tracing.
        inputs: a tensor or a tuple of tensors.
        with_attention: add the SDPA handle (``False`` gives mmengine's
            stock behaviour for it, i.e. attention products uncounted).
    """
    analyzer = FlopAnalyzer(model, inputs)
    handles = dict(EXTRA_FLOP_HANDLES)
    if not with_attention:
        for name in list(handles):
            if 'scaled_dot_product' in name:
                del handles[name]
    analyzer.set_op_handle(**handles)
    analyzer.set_op_handle(**{name: None for name in ZERO_COST_OPS
                              if name not in handles})
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    return analyzer


# --------------------------------------------------------------- reports


@dataclass
class AttentionLayerStat:
    """One IPSA or CPSA layer: the map it sees and its cost.

    ``counted`` comes from the traced counts (qkv + attention products +
    proj); ``paper`` is Eq. 2 (IPSA) or Eq. 3 (CPSA) on the padded map;
    ``msa`` is Eq. 1, global attention on the same (unpadded) map.
    """
    name: str
    kind: str
    h: int
    w: int
    c: int
    patch_size: int
    counted: int
    batch: int = 1

    @property
    def hp(self) -> int:
        return padded(self.h, self.patch_size)

    @property
    def wp(self) -> int:
        return padded(self.w, self.patch_size)

    @property
    def stage(self) -> Optional[int]:
        parts = self.name.split('.')
        if 'stages' in parts:
            idx = parts.index('stages') + 1
            if idx < len(parts) and parts[idx].isdigit():
                return int(parts[idx])
        return None

    @property
    def paper(self) -> int:
        fn = ipsa_macs if self.kind == 'IPSA' else cpsa_macs
        return self.batch * fn(self.hp, self.wp, self.c, self.patch_size)

    @property
    def msa(self) -> int:
        return self.batch * msa_macs(self.h, self.w, self.c)

    @property
    def ratio(self) -> float:
        return self.counted / self.paper if self.paper else float('nan')


@dataclass
class FlopReport:
    """Result of one traced count (multiply-adds).

    Attributes:
        total: multiply-adds of the whole traced model.
        by_module: module name -> multiply-adds (names relative to the
            traced model, ``''`` being the model itself).
        by_operator: op name -> multiply-adds over the whole model.
        unsupported: op -> occurrences of ops with no handle (element-wise
            ops, uncounted by convention, and e.g. mmcv's RoIAlign / NMS).
        attention: one :class:`AttentionLayerStat` per IPSA / CPSA layer.
    """
    total: int
    by_module: Dict[str, int]
    by_operator: Dict[str, int]
    unsupported: Dict[str, int]
    attention: List[AttentionLayerStat] = field(default_factory=list)


def analyze_flops(model: nn.Module, inputs: Inputs,
                  with_attention: bool = True,
                  forward_kwargs: Optional[Dict[str, Any]] = None
                  ) -> FlopReport:
    """Trace ``model(*inputs, **forward_kwargs)`` once and count its
    multiply-adds.

    The model runs its plain ops (:func:`~mmcat.models.plain_forward`): the
    CPU-inference kernels are not what the paper's costs count. The map every
    :class:`InnerPatchAttention` / :class:`CrossPatchAttention` receives is
    recorded on the way (forward pre-hooks), so the report holds the
    per-attention-layer costs as well.

    Args:
        forward_kwargs: non-tensor arguments of ``model.forward`` (e.g. an
            mmdet detector's ``data_samples`` and ``mode='tensor'``), bound
            for the trace only.
    """
    seen: Dict[str, Tuple[int, ...]] = {}
    hooks = []
    attn_modules = {name: mod for name, mod in model.named_modules()
                    if isinstance(mod, (InnerPatchAttention,
                                        CrossPatchAttention))}

    def recorder(name: str):

        def hook(module: nn.Module, args: Tuple[Any, ...]) -> None:
            # read the shape outside the trace: no size ops in the graph
            state = torch._C._get_tracing_state()
            torch._C._set_tracing_state(None)
            try:
                seen.setdefault(name, tuple(int(s) for s in args[0].shape))
            finally:
                torch._C._set_tracing_state(state)

        return hook

    for name, mod in attn_modules.items():
        hooks.append(mod.register_forward_pre_hook(recorder(name)))
    # No autograd graph, but not through torch.no_grad(): tracing under
    # no_grad trips an internal assert of the tracer now and then.
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    own_forward = vars(model).get('forward')
    if forward_kwargs:
        model.forward = partial(model.forward, **forward_kwargs)
    try:
        with plain_forward(model):
            analyzer = build_flop_analyzer(model, inputs, with_attention)
            total = analyzer.total()
            by_module = dict(analyzer.by_module())
            by_operator = dict(analyzer.by_operator())
            unsupported = dict(analyzer.unsupported_ops())
    finally:
        for handle in hooks:
            handle.remove()
        for p in trainable:
            p.requires_grad_(True)
        if forward_kwargs:
            del model.forward
            if own_forward is not None:
                model.forward = own_forward

    attention = []
    for name, mod in attn_modules.items():
        if name not in seen:
            continue
        b, h, w, c = seen[name]
        kind = 'IPSA' if isinstance(mod, InnerPatchAttention) else 'CPSA'
        attention.append(AttentionLayerStat(
            name=name, kind=kind, h=h, w=w, c=c, patch_size=mod.patch_size,
            counted=int(by_module.get(analyzer.canonical_module_name(name),
                                      0)),
            batch=b))
    return FlopReport(int(total), by_module, by_operator, unsupported,
                      attention)


def count_flops(model: nn.Module,
                inputs: Inputs) -> Tuple[int, Counter]:
    """Multiply-adds of ``model(*inputs)``, attention products included.

    Returns:
        (total, by_module): the total and a Counter of module name ->
        multiply-adds (``''`` is the model itself).
    """
    report = analyze_flops(model, inputs)
    return report.total, Counter(report.by_module)


def attention_layer_report(model: nn.Module,
                           input_shape: Sequence[int]
                           ) -> List[AttentionLayerStat]:
    """Per-attention-layer costs of ``model`` on a random input.

    Args:
        model: a CAT backbone (or any module containing IPSA / CPSA layers
            whose ``forward`` takes one image tensor).
        input_shape: ``(H, W)``, ``(C, H, W)`` or ``(B, C, H, W)``.
    """
    shape = tuple(input_shape)
    if len(shape) == 2:
        shape = (1, 3) + shape
    elif len(shape) == 3:
        shape = (1, ) + shape
    param = next(model.parameters(), None)
    x = torch.randn(shape, device=param.device if param is not None else None)
    return analyze_flops(model, (x, )).attention


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (shared ones once)."""
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------ formatting


def _g(value: float) -> str:
    return f'{value / 1e9:.4f}'


def format_attention_table(stats: Sequence[AttentionLayerStat]) -> str:
    """A text table of the attention layers: map, padded map, counted
    multiply-adds, the paper's Eq. 2 / Eq. 3, their ratio and Eq. 1."""
    header = ('layer', 'type', 'HxWxC seen', 'padded', 'counted G',
              'Eq.2/3 G', 'ratio', 'MSA Eq.1 G')
    rows = [header]
    for s in stats:
        rows.append((s.name, s.kind, f'{s.h}x{s.w}x{s.c}',
                     f'{s.hp}x{s.wp}', _g(s.counted), _g(s.paper),
                     f'{s.ratio:.3f}', _g(s.msa)))
    if stats:
        counted = sum(s.counted for s in stats)
        paper = sum(s.paper for s in stats)
        rows.append(('all attention layers', '', '', '', _g(counted),
                     _g(paper), f'{counted / paper:.3f}' if paper else '',
                     _g(sum(s.msa for s in stats))))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    lines = []
    for k, row in enumerate(rows):
        cells = [str(v).ljust(widths[i]) if i < 2 else str(v).rjust(widths[i])
                 for i, v in enumerate(row)]
        lines.append('  '.join(cells).rstrip())
        if k == 0 or (stats and k == len(rows) - 2):
            lines.append('  '.join('-' * wd for wd in widths))
    return '\n'.join(lines)
