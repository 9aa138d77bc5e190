"""Where the numbers come from: the device, its threads and features."""
import os
import platform
from typing import Any, Dict, Optional

import torch

from mmcat.analysis.timing import cpu_name


def bf16_supported(device: str = 'cpu') -> bool:
    """Whether bfloat16 autocast runs natively (CPU: AVX512-BF16 or AMX)."""
    if torch.device(device).type == 'cuda':
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    caps = getattr(torch.cpu, 'get_capabilities', lambda: {})()
    if caps:
        return bool(caps.get('avx512_bf16') or caps.get('amx_bf16'))
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def machine_summary(device: str = 'cpu', threads: Optional[int] = None
                    ) -> Dict[str, Any]:
    """Device, torch and Python versions, CPU count and threads; on CPU also
    its model, features, load average and ``OMP_WAIT_POLICY``."""
    info: Dict[str, Any] = dict(
        device=str(device), torch=torch.__version__,
        python=platform.python_version(), logical_cpus=os.cpu_count(),
        threads=threads if threads is not None else torch.get_num_threads())
    if torch.device(device).type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
        info['cuda'] = torch.version.cuda
    else:
        info['cpu'] = cpu_name()
        caps = getattr(torch.cpu, 'get_capabilities', lambda: {})()
        info['cpu_features'] = [k for k in ('avx512_f', 'avx512_bf16',
                                            'amx_bf16', 'amx_tile')
                                if caps.get(k)]
        info['load_average'] = list(os.getloadavg()) if hasattr(
            os, 'getloadavg') else None
        info['omp_wait_policy'] = os.environ.get('OMP_WAIT_POLICY')
    return info
