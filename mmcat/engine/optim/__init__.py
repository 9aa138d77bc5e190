"""Mixed-precision training: the device/dtype decision (:mod:`.amp`) and the
CPU's bfloat16 optimizer wrapper (:class:`AutocastOptimWrapper`)."""
from .amp import (AMP_DTYPES, AmpConfigError, amp_device,
                  amp_optim_wrapper_cfg, resolve_amp_dtype)
from .autocast_optim_wrapper import AutocastOptimWrapper

__all__ = [
    'AMP_DTYPES', 'AmpConfigError', 'AutocastOptimWrapper', 'amp_device',
    'amp_optim_wrapper_cfg', 'resolve_amp_dtype'
]
