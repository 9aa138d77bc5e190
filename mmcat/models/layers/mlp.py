"""The transformer feed-forward network."""
from functools import lru_cache
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule

from .fast_path import traced_or_counted


@lru_cache(maxsize=None)
def _fused_linear_gelu_available() -> bool:
    """Whether oneDNN's fused linear + GELU kernel runs on this CPU build."""
    op = getattr(torch.ops.mkldnn, '_linear_pointwise', None)
    if op is None or not torch.backends.mkldnn.is_available():
        return False
    try:
        x, w, b = torch.randn(2, 4), torch.randn(3, 4), torch.randn(3)
        out = op(x, w, b, 'gelu', [], 'none')
        return bool(torch.allclose(
            out, nn.functional.gelu(nn.functional.linear(x, w, b)),
            atol=1e-5))
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


class Mlp(BaseModule):
    """Linear(C -> hidden) -> activation -> dropout -> Linear(hidden -> C) -> dropout.

    On CPU inference (no autograd) with the default exact GELU, the first
    linear layer and the activation run as one oneDNN kernel, which saves a
    pass over the (tokens x hidden) activations; results are the same.

    Args:
        in_features: C.
        hidden_features: width of the hidden layer.
        act_cfg: activation config (mmcv).
        drop_rate: dropout after each linear layer.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_features: int,
                 hidden_features: int,
                 act_cfg: Optional[dict] = None,
                 drop_rate: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = build_activation_layer(act_cfg or dict(type='GELU'))
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop_rate)

    def _fusable(self, x: torch.Tensor) -> bool:
        return (not torch.is_grad_enabled() and x.device.type == 'cpu'
                and type(self.act) is nn.GELU
                and self.act.approximate == 'none'
                and (x.dtype == torch.float32 or x.dtype == torch.bfloat16)
                and _fused_linear_gelu_available()
                and not traced_or_counted())

    def _fc1_gelu(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.fc1.weight, self.fc1.bias
        if torch.is_autocast_enabled('cpu'):
            dtype = torch.get_autocast_dtype('cpu')
            x, w, b = x.to(dtype), w.to(dtype), b.to(dtype)
        elif w.dtype != x.dtype:
            return self.act(self.fc1(x))
        return torch.ops.mkldnn._linear_pointwise(x, w, b, 'gelu', [], 'none')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C)."""
        if self._fusable(x) and self.fc1.bias is not None:
            hidden = self._fc1_gelu(x)
        else:
            hidden = self.act(self.fc1(x))
        return self.drop(self.fc2(self.drop(hidden)))
