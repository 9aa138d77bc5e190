"""The ``nn.Conv2d`` signature of mmcat's convolution kinds, checked once.

Every kind in :mod:`.convs` is built from :class:`ConvKind`: it takes
``(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
groups=1, bias=True)`` plus the further ``nn.Conv2d`` keywords it lists in
``extra_args``, and every bad value raises an error that names the class, the
field and what is allowed.
"""
import inspect
from dataclasses import dataclass, field
from math import gcd
from typing import Any, ClassVar, Dict, List, Tuple, Union

__all__ = ['Size2', 'Conv2dArgs', 'ConvKind', 'ConvStandIn', 'int_pair']

Size2 = Union[int, Tuple[int, int]]

_PADDING_MODES = ('zeros', 'reflect', 'replicate', 'circular')


@dataclass(frozen=True)
class Conv2dArgs:
    """The ``nn.Conv2d`` arguments, checked, with spatial ones as pairs.

    ``padding`` is a pair, or ``'same'`` / ``'valid'`` for kinds that take
    string padding; ``extra`` holds the kind's ``extra_args`` with their
    defaults filled in.
    """
    in_channels: int
    out_channels: int
    kernel_size: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Union[Tuple[int, int], str]
    dilation: Tuple[int, int]
    groups: int
    bias: bool
    extra: Dict[str, Any] = field(default_factory=dict)


def _int(owner: str, name: str, value: Any, minimum: int) -> int:
    """``value`` if it is an int >= ``minimum``, else ValueError."""
    if (not isinstance(value, int) or isinstance(value, bool)
            or value < minimum):
        raise ValueError(
            f'{owner}: {name} must be an int >= {minimum}, got {value!r}')
    return value


def int_pair(owner: str, name: str, value: Any,
             minimum: int) -> Tuple[int, int]:
    """``value`` (an int or a pair of ints >= ``minimum``) as a pair."""
    pair = (value, value) if isinstance(value, int) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= minimum
            for v in pair)):
        raise ValueError(f'{owner}: {name} must be an int >= {minimum} or a '
                         f'pair of them, got {value!r}')
    return int(pair[0]), int(pair[1])


def _divisors(n: int) -> List[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _check_groups(owner: str, groups: Any, **channels: int) -> int:
    """``groups`` if it divides every channel count, else ValueError listing
    the groups that would."""
    groups = _int(owner, 'groups', groups, 1)
    bad = {k: v for k, v in channels.items() if v % groups}
    if bad:
        common = 0
        for v in channels.values():
            common = gcd(common, v)
        names = ' and '.join(f'{k}={v}' for k, v in channels.items())
        raise ValueError(
            f'{owner}: groups={groups} must divide {names}; allowed groups: '
            f'{_divisors(common)}')
    return groups


class ConvKind:
    """Mixin of a convolution kind: the ``nn.Conv2d`` signature, checked.

    Put it before the torch module class in the bases. A kind sets
    ``extra_args`` (further ``nn.Conv2d`` keywords it takes, with defaults)
    and ``string_padding``, implements :meth:`_build` and may add checks in
    :meth:`_check_kind`.
    """

    #: Further ``nn.Conv2d`` keyword arguments the kind takes, with defaults.
    extra_args: ClassVar[Dict[str, Any]] = {}
    #: Whether ``padding`` may also be ``'same'`` or ``'valid'``.
    string_padding: ClassVar[bool] = False

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: Size2,
                 stride: Size2 = 1,
                 padding: Union[Size2, str] = 0,
                 dilation: Size2 = 1,
                 groups: int = 1,
                 bias: bool = True,
                 **extra: Any) -> None:
        call = dict(in_channels=in_channels, out_channels=out_channels,
                    kernel_size=kernel_size, stride=stride, padding=padding,
                    dilation=dilation, groups=groups, bias=bias)
        self._build(self._check_args(call, extra))

    @classmethod
    def allowed_args(cls) -> List[str]:
        """The argument names the kind takes, in signature order."""
        params = inspect.signature(ConvKind.__init__).parameters.values()
        return [
            p.name for p in params
            if p.name != 'self' and p.kind != p.VAR_KEYWORD
        ] + list(cls.extra_args)

    def _reject_unknown(self, extra: Dict[str, Any]) -> None:
        """TypeError naming ``extra``'s keys that the kind does not take."""
        unknown = sorted(set(extra) - set(self.extra_args))
        if unknown:
            raise TypeError(
                f'{type(self).__name__} got unexpected argument(s) '
                f'{", ".join(map(repr, unknown))}; allowed: '
                f'{", ".join(self.allowed_args())}')

    def _check_args(self, call: Dict[str, Any],
                    extra: Dict[str, Any]) -> Conv2dArgs:
        """Check the call's arguments; return them as :class:`Conv2dArgs`."""
        owner = type(self).__name__
        padding = call['padding']
        string_padding = self.string_padding and isinstance(padding, str)
        if string_padding and padding not in ('same', 'valid'):
            raise ValueError(f"{owner}: padding must be an int, a pair, "
                             f"'same' or 'valid', got {padding!r}")
        self._reject_unknown(extra)
        in_channels = _int(owner, 'in_channels', call['in_channels'], 1)
        out_channels = _int(owner, 'out_channels', call['out_channels'], 1)
        if isinstance(padding, str) and not string_padding:
            raise ValueError(f'{owner}: padding must be an int >= 0 or a '
                             f'pair of them (string padding is only for '
                             f'nn.Conv2d kinds), got {padding!r}')
        if not isinstance(call['bias'], bool):
            raise ValueError(
                f'{owner}: bias must be True or False, got {call["bias"]!r}')
        args = Conv2dArgs(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=int_pair(owner, 'kernel_size', call['kernel_size'],
                                 1),
            stride=int_pair(owner, 'stride', call['stride'], 1),
            padding=padding if string_padding else int_pair(
                owner, 'padding', padding, 0),
            dilation=int_pair(owner, 'dilation', call['dilation'], 1),
            groups=_check_groups(owner, call['groups'],
                                 in_channels=in_channels,
                                 out_channels=out_channels),
            bias=call['bias'],
            extra={**self.extra_args, **extra})
        mode = args.extra.get('padding_mode', 'zeros')
        if mode not in _PADDING_MODES:
            raise ValueError(f'{owner}: padding_mode must be one of '
                             f'{_PADDING_MODES}, got {mode!r}')
        self._check_kind(args)
        return args

    def _check_kind(self, args: Conv2dArgs) -> None:
        """Raise ValueError if ``args`` do not describe this kind."""

    def _build(self, args: Conv2dArgs) -> None:
        """Initialise the torch module from the checked arguments."""
        raise NotImplementedError


class ConvStandIn(ConvKind):
    """A kind that is not an ``nn.Conv2d`` but stands in for one: it carries
    the attributes ``ConvModule`` and the cost rules read."""

    transposed = False
    output_padding = (0, 0)

    def _store(self, args: Conv2dArgs) -> None:
        """Keep the ``nn.Conv2d`` attributes of what the kind replaces."""
        self.in_channels = args.in_channels
        self.out_channels = args.out_channels
        self.kernel_size = args.kernel_size
        self.stride = args.stride
        self.padding = args.padding
        self.dilation = args.dilation
        self.groups = args.groups

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}, '
                f'groups={self.groups}')
