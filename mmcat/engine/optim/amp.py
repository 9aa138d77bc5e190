"""Mixed-precision training: which device, which dtype, which optimizer
wrapper. The one place that decides them.

* CUDA (and mmengine's other accelerators): mmengine's ``AmpOptimWrapper``,
  float16 by default with dynamic loss scaling; bfloat16 where the GPU
  supports it (``torch.cuda.is_bf16_supported()``).
* CPU: :class:`~mmcat.engine.optim.AutocastOptimWrapper`, bfloat16 autocast
  without a loss scaler (bfloat16 has float32's exponent range, so its
  gradients do not underflow); float16 is refused.

``tools/train.py --amp [--amp-dtype ...]`` calls :func:`amp_optim_wrapper_cfg`
before anything is built, so a bad choice stops the run at once.
"""
import copy
import warnings
from typing import Optional, Union

import torch
from mmengine.device import get_device

__all__ = [
    'AMP_DTYPES', 'AMP_WRAPPER_TYPES', 'AmpConfigError', 'amp_device',
    'amp_optim_wrapper_cfg', 'cpu_has_native_bf16', 'resolve_amp_dtype',
    'wrapper_type_name'
]

#: The dtypes mixed-precision training autocasts to.
AMP_DTYPES = ('float16', 'bfloat16')
#: Wrapper types that already train in mixed precision.
AMP_WRAPPER_TYPES = ('AmpOptimWrapper', 'AutocastOptimWrapper')
#: CPU flags of native bfloat16 arithmetic: x86 (AVX512-BF16, AMX) and Arm.
NATIVE_BF16_FLAGS = frozenset({'avx512_bf16', 'amx_bf16', 'bf16'})

DtypeLike = Union[str, torch.dtype, None]

# warnings given once per process
_warned = dict(emulated_bf16=False)


class AmpConfigError(ValueError):
    """Mixed precision asked for in a way the training device cannot run."""


def amp_device() -> str:
    """The device type the Runner trains on: mmengine's ``get_device()``
    (``'cuda'`` when CUDA is available, else ``'cpu'``; NPU, MLU and MUSA
    as mmengine detects them)."""
    return get_device()


def cpu_has_native_bf16(cpuinfo: str = '/proc/cpuinfo') -> Optional[bool]:
    """Whether the CPU has bfloat16 instructions (:data:`NATIVE_BF16_FLAGS`
    among the ``flags`` / ``Features`` of ``cpuinfo``); None when that file
    cannot be read or lists no flags (not Linux)."""
    try:
        with open(cpuinfo, encoding='utf-8', errors='replace') as f:
            text = f.read()
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(':')
        if key.strip() in ('flags', 'Features'):
            flags.update(value.split())
    return bool(flags & NATIVE_BF16_FLAGS) if flags else None


def _dtype_name(dtype: DtypeLike) -> Optional[str]:
    """``'float16'`` for ``torch.float16`` or ``'float16'``; None stays."""
    if dtype is None:
        return None
    name = str(dtype).replace('torch.', '')
    if name not in AMP_DTYPES:
        raise AmpConfigError(
            f'mixed-precision dtype {dtype!r} is not supported: use one of '
            f'{", ".join(AMP_DTYPES)}')
    return name


def resolve_amp_dtype(dtype: DtypeLike = None,
                      device: Optional[str] = None) -> str:
    """The dtype to autocast to on ``device``, checked.

    Args:
        dtype: ``'float16'``, ``'bfloat16'`` (or the torch dtypes); None:
            float16 on CUDA, bfloat16 on the CPU.
        device: the device type; None: :func:`amp_device`.

    Returns:
        ``'float16'`` or ``'bfloat16'``.

    Raises:
        AmpConfigError: float16 on the CPU; bfloat16 on a GPU without bf16
            support.

    Warns:
        UserWarning: bfloat16 on a CPU without native bf16 instructions
            (it works, emulated, slowly); once per process.
    """
    device = device or amp_device()
    name = _dtype_name(dtype)
    if device == 'cpu':
        name = name or 'bfloat16'
        if name == 'float16':
            raise AmpConfigError(
                'float16 mixed-precision training is not supported on the '
                'CPU (mmengine\'s CPU autocast takes bfloat16 only, and '
                'there is no loss scaler for float16\'s small gradients): '
                "use --amp-dtype bfloat16 (optim_wrapper.dtype='bfloat16'), "
                'or train without --amp')
        if cpu_has_native_bf16() is False and not _warned['emulated_bf16']:
            _warned['emulated_bf16'] = True  # the tool and the wrapper ask
            warnings.warn(
                'bfloat16 autocast on a CPU without native bf16 instructions '
                '(no avx512_bf16 / amx_bf16): training works but is emulated '
                'and much slower than float32; train without --amp for '
                'speed')
        return name
    if device == 'cuda':
        name = name or 'float16'
        if name == 'bfloat16' and not torch.cuda.is_bf16_supported():
            gpu = torch.cuda.get_device_name()
            raise AmpConfigError(
                f'bfloat16 mixed-precision training needs a GPU with bf16 '
                f'support (Ampere or newer); {gpu} has none '
                f'(torch.cuda.is_bf16_supported() is False): use '
                f'--amp-dtype float16')
        return name
    return name or 'float16'  # NPU, MLU, MUSA: mmengine's AmpOptimWrapper


def wrapper_type_name(optim_wrapper: dict) -> str:
    """The class name of ``optim_wrapper``'s type (default
    ``OptimWrapper``), without a scope prefix such as ``mmengine.``."""
    wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
    if not isinstance(wrapper_type, str):
        wrapper_type = wrapper_type.__name__
    return wrapper_type.split('.')[-1]


def amp_optim_wrapper_cfg(optim_wrapper: dict,
                          dtype: DtypeLike = None,
                          device: Optional[str] = None) -> dict:
    """The mixed-precision version of an ``optim_wrapper`` config.

    On CUDA (and NPU, MLU, MUSA): ``AmpOptimWrapper`` with ``dtype`` and the
    config's ``loss_scale`` (default ``'dynamic'``). On the CPU:
    ``AutocastOptimWrapper`` with bfloat16, ``device_type='cpu'`` and no
    loss scaler (a config's ``loss_scale`` and ``use_fsdp`` are dropped). Everything else (optimizer,
    ``clip_grad``, ``accumulative_counts``, ...) is kept.

    Args:
        optim_wrapper: an ``OptimWrapper``, ``AmpOptimWrapper`` or
            ``AutocastOptimWrapper`` config; not changed.
        dtype: the dtype asked for (``--amp-dtype``); None: the config's
            ``dtype``, else the device's default (:func:`resolve_amp_dtype`).
        device: the device type; None: :func:`amp_device`.

    Returns:
        A new config dict.

    Raises:
        AmpConfigError: another wrapper type, or a dtype the device cannot
            train in (see :func:`resolve_amp_dtype`).
    """
    wrapper_type = wrapper_type_name(optim_wrapper)
    if wrapper_type not in ('OptimWrapper', ) + AMP_WRAPPER_TYPES:
        raise AmpConfigError(
            f'mixed precision needs optim_wrapper.type OptimWrapper, '
            f'AmpOptimWrapper or AutocastOptimWrapper, got {wrapper_type}: '
            f'set one of them, or train without --amp')
    device = device or amp_device()
    name = resolve_amp_dtype(
        dtype if dtype is not None else optim_wrapper.get('dtype'), device)
    cfg = copy.deepcopy(dict(optim_wrapper))
    cfg['dtype'] = name
    cfg.pop('device_type', None)
    if device == 'cpu':
        cfg.update(type='AutocastOptimWrapper', device_type='cpu')
        cfg.pop('loss_scale', None)
        cfg.pop('use_fsdp', None)
    else:
        cfg['type'] = 'AmpOptimWrapper'
        cfg.setdefault('loss_scale', 'dynamic')
    return cfg
