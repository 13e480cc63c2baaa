"""gatewayd/bench/soak.py: the RSS figures and the bounds (pure parts; the soak itself is a benchmark)."""

from __future__ import annotations

import os

import pytest

from gatewayd.bench.soak import SoakResult, rss_growth, status_mb, summarise


def result(completed: int = 40) -> SoakResult:
    return SoakResult(calls=16, sip_calls=4, modem_calls=12, minutes=10, bucket="s3", malloc_arena_max=0,
                      calls_completed=completed, bounds={"peak_rss_mb": 120.0, "rss_growth_mb": 5.0})


def wobbly(level: float, slope_per_s: float, seconds: int = 600) -> list[tuple[float, float]]:
    """Call churn: RSS wobbles ±3 MB around a line."""
    return [(float(t), level + slope_per_s * t + 3.0 * ((t % 7) - 3) / 3) for t in range(seconds)]


def test_flat_rss_with_churn_passes() -> None:
    r = summarise(result(), wobbly(90.0, 0.0), peak_mb=96.0)
    assert r.ok and r.missed == []
    assert abs(r.rss_growth_mb) < 0.5 and r.rss_at_20pct_mb == pytest.approx(90.0, abs=0.5)
    assert r.peak_rss_mb == 96.0 and r.max_sampled_rss_mb == pytest.approx(93.0, abs=0.01)
    assert r.rss_samples == 600 and r.rss_start_mb == pytest.approx(87.0, abs=0.01)


def test_growth_counts_only_the_last_80_percent() -> None:
    # a 30 MB ramp in the first 20 % (start-up, ramp-up), then flat: no growth
    ramp = [(float(t), 60.0 + 30.0 * t / 120) for t in range(120)] + [(float(t), 90.0) for t in range(120, 600)]
    r = summarise(result(), ramp, peak_mb=90.0)
    assert r.ok and r.rss_growth_mb == pytest.approx(0.0, abs=0.01)


def test_a_leak_misses_the_growth_bound() -> None:
    leak = wobbly(80.0, 8.0 / 480)  # 8 MB over the last 480 s
    r = summarise(result(), leak, peak_mb=95.0)
    assert r.rss_growth_mb == pytest.approx(8.0, abs=0.3)
    assert not r.ok and r.missed == [f"RSS growth {r.rss_growth_mb} MB > 5 MB over the last 80 %"]


def test_peak_over_the_bound_misses_even_when_flat() -> None:
    r = summarise(result(), wobbly(110.0, 0.0), peak_mb=121.5)
    assert not r.ok and r.missed == ["peak RSS 121.5 MB > 120 MB"]
    # the sampled maximum counts when it is above VmHWM (it cannot be on Linux, but the figure is a max)
    r = summarise(result(), [(0.0, 100.0), *wobbly(100.0, 0.0)[1:], (600.0, 125.0)], peak_mb=100.0)
    assert r.peak_rss_mb == 125.0 and not r.ok


def test_a_run_without_load_or_samples_is_void() -> None:
    r = summarise(result(completed=3), wobbly(80.0, 0.0), peak_mb=85.0)
    assert not r.ok and r.missed == ["only 3 calls completed (< 16): the load was not there"]
    r = summarise(result(), [(0.0, 80.0), (1.0, 80.0)], peak_mb=80.0)
    assert not r.ok and "the run is void" in r.missed[0]


def test_growth_of_too_few_samples() -> None:
    assert rss_growth([]) == (0.0, 0.0)
    assert rss_growth([(0.0, 50.0)]) == (50.0, 0.0)
    start, growth = rss_growth([(0.0, 50.0), (10.0, 60.0)])
    assert growth == pytest.approx(0.0) and start == 60.0  # only the last sample is in the window


def test_status_mb_reads_proc() -> None:
    rss = status_mb(os.getpid(), "VmRSS")
    assert 5.0 < rss <= status_mb(os.getpid(), "VmHWM")
    with pytest.raises(RuntimeError):
        status_mb(os.getpid(), "NoSuchField")
