"""gatewayd/bench/startup.py: the percentile and the p95 bound check (the measuring runs in integration)."""

from __future__ import annotations

import pytest

from gatewayd.bench.startup import percentile, summarize


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # order does not matter
    assert percentile([0.7], 95) == 0.7
    with pytest.raises(ValueError):
        percentile([], 50)


def test_one_slow_start_in_twenty_passes_two_fail() -> None:
    fast = [0.6] * 19
    figures, ok = summarize([*fast, 5.0], 2.0)
    assert ok and figures["p95_s"] == 0.6 and figures["max_s"] == 5.0 and figures["n"] == 20
    figures, ok = summarize([*fast[:18], 2.5, 5.0], 2.0)
    assert not ok and figures["p95_s"] == 2.5


def test_the_bound_is_inclusive() -> None:
    assert summarize([2.0, 1.0], 2.0)[1]
    assert not summarize([2.001, 1.0], 2.0)[1]
