"""ConvKind: the one checked nn.Conv2d signature of the convolution kinds."""
import pytest
import torch.nn as nn

from mmcat.models.layers.conv_base import Conv2dArgs, ConvStandIn


class _Probe(ConvStandIn, nn.Module):
    """A minimal kind that keeps its checked arguments."""

    def _build(self, args: Conv2dArgs) -> None:
        nn.Module.__init__(self)
        self._store(args)
        self.args = args


class _ProbeWithMode(_Probe):
    extra_args = dict(padding_mode='zeros')


def test_checked_arguments_become_pairs() -> None:
    m = _Probe(4, 6, 3, stride=(2, 1), padding=1)
    assert m.args == Conv2dArgs(4, 6, (3, 3), (2, 1), (1, 1), (1, 1), 1, True)
    assert (m.kernel_size, m.stride, m.groups) == ((3, 3), (2, 1), 1)
    assert m.transposed is False and m.output_padding == (0, 0)
    assert 'kernel_size=(3, 3), stride=(2, 1), padding=(1, 1)' in repr(m)


def test_extra_args_are_allowed_and_checked() -> None:
    assert _Probe.allowed_args() == [
        'in_channels', 'out_channels', 'kernel_size', 'stride', 'padding',
        'dilation', 'groups', 'bias'
    ]
    assert _ProbeWithMode.allowed_args()[-1] == 'padding_mode'
    assert _ProbeWithMode(4, 4, 3).args.extra == dict(padding_mode='zeros')
    with pytest.raises(ValueError, match='padding_mode must be one of'):
        _ProbeWithMode(4, 4, 3, padding_mode='mirror')
    with pytest.raises(TypeError, match=r"_Probe got unexpected argument\(s\) "
                       r"'padding_mode'; allowed: in_channels"):
        _Probe(4, 4, 3, padding_mode='zeros')


def test_string_padding_only_for_kinds_that_take_it() -> None:
    with pytest.raises(ValueError, match='string padding is only for '
                       'nn.Conv2d kinds'):
        _Probe(4, 4, 3, padding='same')
