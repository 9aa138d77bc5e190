"""Timing helpers: percentiles, the timed loop, autocast, device line."""
import numpy as np
import pytest
import torch

from mmcat.analysis.timing import (Timing, autocast_context, device_summary,
                                   percentile, time_fn)


@pytest.mark.parametrize('q', [0, 10, 50, 90, 99, 100])
def test_percentile_matches_numpy(q):
    values = [3.0, 1.0, 7.5, 2.0, 9.0, 4.0, 4.0]
    assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_percentile_errors():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_timing_summary():
    timing = Timing(times=[0.1, 0.3, 0.2, 0.2], batch=2)
    assert timing.median == pytest.approx(0.2)
    assert timing.fps == pytest.approx(10.0)
    s = timing.summary()
    assert s['median_ms'] == pytest.approx(200)
    assert s['min_ms'] == pytest.approx(100)
    assert s['max_ms'] == pytest.approx(300)
    assert s['iters'] == 4
    assert '10 img/s' in timing.format()


def test_time_fn_calls_and_counts():
    calls = []
    timing = time_fn(lambda: calls.append(1), num_iters=7, warmup=3,
                     batch=4)
    assert len(calls) == 10
    assert len(timing.times) == 7 and all(t >= 0 for t in timing.times)
    assert timing.batch == 4
    with pytest.raises(ValueError):
        time_fn(lambda: None, num_iters=0)


def test_time_fn_stops_after_max_seconds():
    import time
    timing = time_fn(lambda: time.sleep(0.01), num_iters=1000, warmup=0,
                     max_seconds=0.03)
    assert 1 <= len(timing.times) < 10


def test_autocast_on_cpu():
    a = torch.randn(4, 4)
    with autocast_context(torch.device('cpu'), True):
        assert (a @ a).dtype == torch.bfloat16
    with autocast_context(torch.device('cpu'), False):
        assert (a @ a).dtype == torch.float32


def test_device_summary_names_threads():
    text = device_summary(torch.device('cpu'))
    assert f'torch threads {torch.get_num_threads()}' in text
    assert text.startswith('CPU ')
