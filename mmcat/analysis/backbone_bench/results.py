"""What a run measured for each (size, dtype, model), and the ratios taken
over it."""
import statistics
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from .zoo import Size


@dataclass
class Row:
    """Results of one (size, dtype, model).

    Attributes:
        params: parameters of the model.
        macs: multiply-adds of one forward of the batch (None: not counted).
        times: mode ('fwd', 'train') -> wall seconds of each kept round.
        cpu_times: mode -> process CPU seconds of the same calls.
        memory: mode -> the memory measurement (``peak_bytes``, ...).
        max_abs_diff: largest output difference from the fp32 reference.
        skipped: mode -> why it was not measured.
    """
    size: Size
    dtype: str
    model: str
    params: int = 0
    macs: Optional[int] = None
    times: Dict[str, List[float]] = field(default_factory=dict)
    cpu_times: Dict[str, List[float]] = field(default_factory=dict)
    memory: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    max_abs_diff: Optional[float] = None
    skipped: Dict[str, str] = field(default_factory=dict)

    def median(self, mode: str) -> Optional[float]:
        t = self.times.get(mode)
        return statistics.median(t) if t else None

    def peak_bytes(self, mode: str) -> Optional[int]:
        return self.memory.get(mode, {}).get('peak_bytes')

    def mode_macs(self, mode: str) -> Optional[int]:
        """Multiply-adds of one call: a training step counts as 3x the
        forward."""
        if self.macs is None:
            return None
        return self.macs * (3 if mode == 'train' else 1)


def rows_from_result(result: Dict[str, Any]) -> List[Row]:
    """The :class:`Row` objects of a ``run_benchmark`` result."""
    return [Row(**dict(r, size=tuple(r['size']))) for r in result['rows']]


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """``a / b``, None when either is missing or ``b`` is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def paired_ratio(a: Optional[Sequence[float]],
                 b: Optional[Sequence[float]]) -> Optional[float]:
    """Median over rounds of ``a[i] / b[i]`` (times of the same rounds);
    the ratio of the medians when the rounds do not pair up."""
    if not a or not b:
        return None
    if len(a) != len(b) or not all(b):
        return ratio(statistics.median(a), statistics.median(b))
    return statistics.median(x / y for x, y in zip(a, b))


def cpu_ratio(a: Row, b: Optional[Row], mode: str) -> Optional[float]:
    """:func:`paired_ratio` of two rows' process CPU times."""
    if b is None:
        return None
    return paired_ratio(a.cpu_times.get(mode), b.cpu_times.get(mode))
