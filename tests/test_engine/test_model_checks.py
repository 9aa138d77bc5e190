"""check_neck_widths: a neck that does not fit its backbone is a build-time
error naming both width lists and the fix."""
import re

import pytest
import torch.nn as nn
from mmdet.models.backbones import ResNet
from mmdet.models.necks import FPN

import mmcat  # noqa: F401
from mmcat.models import CAT
from mmcat.engine.model_checks import (backbone_out_channels,
                                       check_neck_widths, unwrap_model)

NARROW = dict(embed_dims=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2))


class Detector(nn.Module):
    """Just the parts the check reads."""

    def __init__(self, backbone: nn.Module, neck=None) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck


class TTA(nn.Module):
    """Keeps the model as ``.module``, as mmengine's TTA models do."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module


@pytest.mark.parametrize('backbone, widths', [
    (CAT(arch=NARROW), [8, 16, 32, 64]),
    (CAT(arch=NARROW, out_indices=(1, -1)), [16, 64]),
    (ResNet(depth=18, base_channels=8, out_indices=(1, 2, 3)), [16, 32, 64]),
    (ResNet(depth=50, base_channels=8), [32, 64, 128, 256]),
    (nn.Conv2d(3, 8, 1), None),
])
def test_backbone_out_channels(backbone, widths):
    assert backbone_out_channels(backbone) == widths


def test_matching_neck_passes():
    check_neck_widths(Detector(CAT(arch=NARROW), FPN([8, 16, 32, 64], 8, 4)))
    check_neck_widths(
        Detector(ResNet(depth=18, base_channels=8, out_indices=(1, 2, 3)),
                 FPN([16, 32, 64], 8, 3)))
    check_neck_widths(Detector(CAT(arch=NARROW)))           # no neck
    check_neck_widths(Detector(nn.Conv2d(3, 8, 1), FPN([1, 2], 8, 2)))


@pytest.mark.parametrize('backbone, in_channels, widths', [
    (CAT(arch=NARROW), [96, 192, 384, 768], [8, 16, 32, 64]),
    (CAT(arch=NARROW, out_indices=(1, 2, 3)), [8, 16, 32], [16, 32, 64]),
    (ResNet(depth=18, base_channels=8), [256, 512, 1024, 2048],
     [8, 16, 32, 64]),
])
def test_mismatched_neck_names_both_lists_and_the_fix(backbone, in_channels,
                                                      widths):
    model = Detector(backbone, FPN(in_channels, 8, len(in_channels)))
    with pytest.raises(ValueError) as info:
        check_neck_widths(TTA(model))  # found inside wrappers too
    msg = str(info.value)
    assert f'in_channels={in_channels}' in msg
    assert f'with {widths} channels' in msg
    assert f'Set model.neck.in_channels={widths}' in msg
    assert re.search(r'out_indices=\(\d', msg)


def test_unwrap_model():
    model = Detector(CAT(arch=NARROW))
    assert unwrap_model(TTA(model)) is model
    assert unwrap_model(model) is model
