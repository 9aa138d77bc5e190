"""The transformer feed-forward network."""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule


class Mlp(BaseModule):
    """Linear(C -> hidden) -> activation -> dropout -> Linear(hidden -> C) -> dropout.

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C)."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
