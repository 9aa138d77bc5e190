"""The transformer feed-forward network."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule

from .recompute import act_linear


class Mlp(BaseModule):
    """Linear(C -> hidden) -> activation -> dropout -> Linear(hidden -> C) -> dropout.

    Args:
        in_features: C.
        hidden_features: width of the hidden layer.
        act_cfg: activation config (mmcv).
        drop_rate: dropout after each linear layer.
        act_with_cp: under autograd, keep only the activation's input and
            compute its output again in backward (one of the two
            hidden-width tensors a training step keeps per MLP, for one
            more pass of the activation); applies when ``drop_rate`` is 0
            or in eval mode, and not under ``torch.jit.trace``.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_features: int,
                 hidden_features: int,
                 act_cfg: Optional[dict] = None,
                 drop_rate: float = 0.,
                 act_with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = build_activation_layer(act_cfg or dict(type='GELU'))
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop_rate)
        self.act_with_cp = act_with_cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C)."""
        h = self.fc1(x)
        if (self.act_with_cp and h.requires_grad
                and not (self.training and self.drop.p > 0)
                and not torch.jit.is_tracing()):   # tracers: plain ops
            return self.drop(act_linear(self.act, h, self.fc2))
        return self.drop(self.fc2(self.drop(self.act(h))))
