"""Which ``scaled_dot_product_attention`` kernel each attention layer of a CAT
backbone gets, asked of PyTorch's own selection.

One forward of the backbone runs under a
:class:`~torch.overrides.TorchFunctionMode` that sees every call of
``F.scaled_dot_product_attention`` with the tensors the model really passes
(padded heads on CUDA included), and forward pre-hooks name the layer making
it. For each call ``torch._fused_sdp_choice`` gives the backend PyTorch
dispatches to (on the CPU: its flash kernel or math); on CUDA
``torch.backends.cuda``'s ``can_use_flash_attention`` /
``can_use_efficient_attention`` / ``can_use_cudnn_attention`` say which fused
kernels are ruled out, and the same call with only that kernel enabled gives
PyTorch's reasons. Nothing in the model is changed.

An eval-mode, no-grad forward on the CPU runs CAT's CPU-inference kernels,
which attend IPSA's short sequences with per-head matrix products and no
SDPA call; such a layer is reported as making no call.
"""
import re
import warnings
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple)

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode

from mmcat.models import CAT
from mmcat.models.layers import (AttentionBlock, CrossPatchAttention,
                                 InnerPatchAttention)
from .backbone_bench.work import DTYPES
from .backbone_bench.zoo import Size, canonical_model_name

Shape = Tuple[int, ...]

#: Readable names of ``torch.nn.attention.SDPBackend`` members.
BACKEND_LABELS = {
    'FLASH_ATTENTION': 'flash', 'EFFICIENT_ATTENTION': 'memory-efficient',
    'CUDNN_ATTENTION': 'cuDNN', 'MATH': 'math', 'OVERRIDEABLE': 'overrideable',
    'ERROR': 'none (no kernel accepts the call)'}
#: The fused CUDA kernels: the function that says whether one applies, and
#: its backend.
_CUDA_KERNELS = (
    ('flash', 'can_use_flash_attention', SDPBackend.FLASH_ATTENTION),
    ('memory-efficient', 'can_use_efficient_attention',
     SDPBackend.EFFICIENT_ATTENTION),
    ('cuDNN', 'can_use_cudnn_attention', SDPBackend.CUDNN_ATTENTION))
_TRIGGERED = re.compile(r'\s*\(Triggered internally at [^)]*\)\s*$')
#: How PyTorch opens each kernel's reasons when no kernel can run a call.
_HEADERS = {'flash': 'Flash attention kernel not used because:',
            'memory-efficient': 'Memory efficient kernel not used because:',
            'cuDNN': 'cuDNN attention kernel not used because:'}
NO_CALL = 'no SDPA call (per-head matmuls, CPU inference kernel)'


@dataclass(frozen=True)
class BackendChoice:
    """The kernel PyTorch picks for one call.

    Attributes:
        backend: the ``SDPBackend`` member's name ('MATH', 'FLASH_ATTENTION',
            'EFFICIENT_ATTENTION', 'CUDNN_ATTENTION', ...).
        not_eligible: (kernel, PyTorch's reason) for each fused CUDA kernel
            that cannot take the call; empty on the CPU.
    """
    backend: str
    not_eligible: Tuple[Tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return BACKEND_LABELS.get(self.backend, self.backend)


def _sdpa_params(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 attn_mask: Optional[torch.Tensor], dropout_p: float,
                 is_causal: bool, enable_gqa: bool) -> Any:
    params = torch.backends.cuda.SDPAParams
    try:
        return params(q, k, v, attn_mask, dropout_p, is_causal, enable_gqa)
    except TypeError:   # releases before enable_gqa
        return params(q, k, v, attn_mask, dropout_p, is_causal)


def ruled_out_reason(kernel: str, q: torch.Tensor, k: torch.Tensor,
                     v: torch.Tensor, **kwargs: Any) -> str:
    """PyTorch's reasons for not running a call on ``kernel`` ('flash',
    'memory-efficient' or 'cuDNN'): the warnings of the call made with only
    that kernel enabled, which stops before computing ("No available
    kernel"); ``can_use_*(debug=True)`` writes the same text to the C++ log
    instead of Python's warnings. Call it for a kernel that is ruled out.

    Args:
        q, k, v, kwargs: the arguments of ``F.scaled_dot_product_attention``.
    """
    backend = {name: member for name, _, member in _CUDA_KERNELS}[kernel]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            with sdpa_kernel([backend]):
                F.scaled_dot_product_attention(q, k, v, **kwargs)
        except RuntimeError:
            pass
    section: List[str] = []
    inside = False
    for w in caught:
        text = _TRIGGERED.sub('', str(w.message)).strip()
        if text.endswith('not used because:'):
            inside = text == _HEADERS[kernel]
        elif inside and text:
            section.append(text)
    return ' '.join(section) or 'not eligible (PyTorch gives no reason)'


def sdpa_backend(q: torch.Tensor,
                 k: torch.Tensor,
                 v: torch.Tensor,
                 attn_mask: Optional[torch.Tensor] = None,
                 dropout_p: float = 0.,
                 is_causal: bool = False,
                 scale: Optional[float] = None,
                 enable_gqa: bool = False) -> BackendChoice:
    """The backend ``F.scaled_dot_product_attention`` dispatches these
    arguments to, under the current grad mode and the enabled kernels.

    Args:
        q, k, v: (..., heads, L, head_dim) as passed to the call.
        attn_mask, dropout_p, is_causal, scale, enable_gqa: as passed.
    """
    kwargs: Dict[str, Any] = dict(scale=scale)
    if enable_gqa:
        kwargs['enable_gqa'] = True
    choice = torch._fused_sdp_choice(q, k, v, attn_mask, dropout_p, is_causal,
                                     **kwargs)
    backend = SDPBackend(choice).name
    if q.device.type != 'cuda':
        return BackendChoice(backend)
    params = _sdpa_params(q, k, v, attn_mask, dropout_p, is_causal,
                          enable_gqa)
    reasons = []
    for kernel, fn, _ in _CUDA_KERNELS:
        check = getattr(torch.backends.cuda, fn, None)
        if check is not None and not check(params, False):
            reasons.append((kernel, ruled_out_reason(
                kernel, q, k, v, attn_mask=attn_mask,
                dropout_p=dropout_p, is_causal=is_causal, **kwargs)))
    return BackendChoice(backend, tuple(reasons))


# ---------------------------------------------------------------- recording
@dataclass
class AttentionCall:
    """One attention of one layer in one forward.

    Attributes:
        layer: the attention module's name, e.g. 'stages.0.blocks.0.cpsa.attn'.
        kind: 'IPSA' or 'CPSA'.
        shapes: q, k, v shapes as passed to SDPA (empty: no SDPA call).
        mask: the attn_mask shape, or None.
        dtype: q's dtype (the layer input's when no SDPA call was made).
        requires_grad: whether autograd records the call.
        choice: PyTorch's backend, or None when no SDPA call was made.
    """
    layer: str
    kind: str
    shapes: Tuple[Shape, ...] = ()
    mask: Optional[Shape] = None
    dtype: str = ''
    requires_grad: bool = False
    choice: Optional[BackendChoice] = None

    @property
    def stage(self) -> Optional[int]:
        match = re.search(r'(?:^|\.)stages\.(\d+)\.', self.layer)
        return int(match.group(1)) if match else None

    @property
    def backend(self) -> str:
        return self.choice.label if self.choice is not None else NO_CALL


@dataclass
class _Entry:
    layer: str
    kind: str
    dtype: str
    calls: List[AttentionCall] = field(default_factory=list)


def _kind(module: nn.Module) -> str:
    return 'IPSA' if isinstance(module, InnerPatchAttention) else 'CPSA'


def _dtype_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in DTYPES.items()}.get(dtype, str(dtype))


class _SDPARecorder(TorchFunctionMode):
    """Passes every torch function through; SDPA calls are reported to
    ``on_call`` first (with this mode off, as torch runs handlers)."""

    def __init__(self, on_call: Callable[..., None]) -> None:
        super().__init__()
        self.on_call = on_call

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            self.on_call(*args, **kwargs)
        return func(*args, **kwargs)


@contextmanager
def record_attention_calls(model: nn.Module) -> Iterator[List[AttentionCall]]:
    """Record the SDPA calls of ``model``'s IPSA and CPSA layers made inside
    the block; the list is filled when the block exits.

    Layers are named by forward pre-hooks on the attention modules and on
    their blocks' ``norm1`` (the CPU-inference kernels call the attention
    functions directly, after the block's ``norm1``).
    """
    entries: List[_Entry] = []
    calls: List[AttentionCall] = []

    def enter(name: str, kind: str) -> Callable[..., None]:
        def hook(_: nn.Module, args: Tuple[Any, ...]) -> None:
            if entries and entries[-1].layer == name and not entries[-1].calls:
                return   # norm1, then the attention module of one block
            dtype = args[0].dtype if args and torch.is_tensor(args[0]) else ''
            entries.append(_Entry(name, kind, _dtype_name(dtype)
                                  if dtype else ''))
        return hook

    def on_call(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                attn_mask: Optional[torch.Tensor] = None,
                dropout_p: float = 0., is_causal: bool = False,
                scale: Optional[float] = None,
                enable_gqa: bool = False) -> None:
        if not entries:
            entries.append(_Entry('(outside IPSA/CPSA)', '-', ''))
        entry = entries[-1]
        grad = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (q, k, v, attn_mask))
        entry.calls.append(AttentionCall(
            entry.layer, entry.kind,
            tuple(tuple(t.shape) for t in (q, k, v)),
            tuple(attn_mask.shape) if attn_mask is not None else None,
            _dtype_name(q.dtype), grad,
            sdpa_backend(q, k, v, attn_mask, dropout_p, is_causal, scale,
                         enable_gqa)))

    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (InnerPatchAttention, CrossPatchAttention)):
            handles.append(module.register_forward_pre_hook(
                enter(name, _kind(module))))
        elif isinstance(module, AttentionBlock) and isinstance(
                module.attn, (InnerPatchAttention, CrossPatchAttention)):
            handles.append(module.norm1.register_forward_pre_hook(
                enter(f'{name}.attn', _kind(module.attn))))
    try:
        with _SDPARecorder(on_call):
            yield calls
    finally:
        for handle in handles:
            handle.remove()
        for entry in entries:
            calls.extend(entry.calls or [AttentionCall(
                entry.layer, entry.kind, dtype=entry.dtype)])


# ------------------------------------------------------------------ the run
@dataclass(frozen=True)
class RunSpec:
    """One forward to report: model, CPSA heads, device, dtype, input."""
    model: str = 'cat_s'
    cpsa_num_heads: int = 1
    device: str = 'cpu'
    dtype: str = 'fp32'
    size: Size = (800, 1344)
    batch: int = 2
    grad: bool = False

    @property
    def title(self) -> str:
        precision = (self.dtype if self.dtype == 'fp32' else
                     f'{self.dtype} (autocast)')
        mode = ('train mode, autograd on' if self.grad else
                'eval mode, no_grad')
        return (f'{self.model}, CPSA heads {self.cpsa_num_heads}, '
                f'{self.device}, {precision}, {self.size[0]}x{self.size[1]}, '
                f'batch {self.batch}, {mode}')


def cat_model_name(model: str) -> str:
    """The zoo name of a CAT ('CAT-S' -> 'cat_s'); other models are an
    error."""
    name = canonical_model_name(model)
    if not name.startswith('cat_'):
        raise ValueError(f'{model!r} has no IPSA/CPSA layers; choose '
                         f'cat_t, cat_s or cat_b (or their _cp variants)')
    return name


def build_cat(model: str, cpsa_num_heads: int = 1) -> CAT:
    """A benchmark-zoo CAT ('cat_t', 'cat_s', 'cat_b', '_cp' for gradient
    checkpointing) with ``cpsa_num_heads`` CPSA heads, randomly
    initialised."""
    name = cat_model_name(model)
    return CAT(arch=CAT.arch_aliases[name[4]], cpsa_num_heads=cpsa_num_heads,
               with_cp=name.endswith('_cp'))


def run_report(spec: RunSpec, model: Optional[CAT] = None,
               seed: int = 0) -> List[AttentionCall]:
    """Run one forward of ``model`` (built from ``spec`` when None) on a
    random input as ``spec`` says and return its attention calls in
    order."""
    if spec.dtype not in DTYPES:
        raise ValueError(f'unknown dtype {spec.dtype!r}; choose from '
                         f'{", ".join(DTYPES)}')
    device = torch.device(spec.device)
    torch.manual_seed(seed)
    if model is None:
        model = build_cat(spec.model, spec.cpsa_num_heads)
    model = model.to(device).train(spec.grad)
    x = torch.randn(spec.batch, 3, *spec.size, device=device)
    precision = (torch.autocast(device.type, dtype=DTYPES[spec.dtype])
                 if spec.dtype != 'fp32' else nullcontext())
    with torch.set_grad_enabled(spec.grad), precision, \
            record_attention_calls(model) as calls:
        model(x.requires_grad_(spec.grad))
    return calls


# --------------------------------------------------------------- the table
def _shape(shape: Shape) -> str:
    return 'x'.join(str(s) for s in shape)


def _layers(names: Sequence[str]) -> str:
    """'blocks.0.pre_ipsa ... blocks.2.post_ipsa (6)', plus the number of
    calls where layers call more than once (chunked CPU inference)."""
    short = list(dict.fromkeys(
        re.sub(r'^(.*\.)?stages\.\d+\.', '', n).replace('.attn', '')
        for n in names))
    text = (', '.join(short) if len(short) <= 3 else
            f'{short[0]} ... {short[-1]} ({len(short)})')
    if len(names) > len(short):
        text += f', {len(names)} calls'
    return text


def _row_key(call: AttentionCall) -> Tuple[Any, ...]:
    reasons = call.choice.not_eligible if call.choice is not None else ()
    return (call.stage, call.kind, call.shapes, call.mask, call.dtype,
            call.requires_grad, call.backend, reasons)


def format_table(calls: Sequence[AttentionCall]) -> str:
    """A markdown table, one row per stage and distinct call (layers making
    identical calls share a row)."""
    groups: 'OrderedDict[Tuple[Any, ...], List[str]]' = OrderedDict()
    for call in calls:
        groups.setdefault(_row_key(call), []).append(call.layer)
    lines = ['| stage | layers | kind | q, k, v (S x heads x L x head dim) '
             '| mask | dtype | grad | backend | fused kernels ruled out |',
             '|---|---|---|---|---|---|---|---|---|']
    for key, names in groups.items():
        stage, kind, shapes, mask, dtype, grad, backend, reasons = key
        if shapes and len(set(shapes)) == 1:
            qkv = _shape(shapes[0])
        else:
            qkv = ', '.join(_shape(s) for s in shapes) or '-'
        why = '; '.join(f'{k}: {r}' for k, r in reasons) or '-'
        lines.append(
            f'| {stage if stage is not None else "-"} | {_layers(names)} '
            f'| {kind} | {qkv} | {_shape(mask) if mask else "-"} '
            f'| {dtype} | {"yes" if grad else "no"} | {backend} | {why} |')
    return '\n'.join(lines)


def format_report(spec: RunSpec, calls: Sequence[AttentionCall]) -> str:
    """A section: the run's title, a one-line count and the table."""
    counts: Dict[str, int] = {}
    for call in calls:
        counts[call.backend] = counts.get(call.backend, 0) + 1
    summary = ', '.join(f'{n} {b}' for b, n in counts.items())
    return (f'### {spec.title}\n\n{len(calls)} attention calls: {summary}.'
            f'\n\n{format_table(calls)}\n')
