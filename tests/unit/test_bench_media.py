"""``gatewayd bench media``: figures, the bound's exit status, pluggable stages (no speed asserted)."""

from __future__ import annotations

import json
import os
import sys
import types
from typing import Any

import pytest

from gatewayd.bench import media as bench
from gatewayd.cli import main
from media.dtmf import detect
from media.frame import AudioFrame


def test_json_figures_and_bound_met(capsys: pytest.CaptureFixture[str]) -> None:
    before = os.sched_getaffinity(0)
    rc = main(["bench", "media", "--json", "--seconds", "3", "--repeat", "1", "--min-rtf", "0"])
    r = json.loads(capsys.readouterr().out)
    assert rc == 0 and r["ok"] is True
    assert os.sched_getaffinity(0) == before  # pinned only while measuring
    assert r["cpu"] in before and len(r["loadavg"]) == 3
    assert r["frames"] == 150 and r["audio_seconds"] == 3.0
    assert {"g711_decode", "dtmf", "silence"} <= set(r["stages"])
    assert r["chain"]["stages"][:3] == ["g711_decode", "dtmf", "silence"]
    for s in [*r["stages"].values(), r["chain"]]:
        assert s["rtf"] > 0 and 0 < s["p50_us"] <= s["p99_us"]
    assert r["bound"] == {"chain_rtf_min": 0.0}


def test_missed_bound_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["bench", "media", "--seconds", "1", "--repeat", "1", "--min-rtf", "1e12"])
    out = capsys.readouterr().out
    assert rc == 1 and "MISSED" in out and "chain" in out


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "media", "--seconds", "0"]) == 64
    assert main(["bench", "media", "--cpu", "100000"]) == 64
    assert "not available" in capsys.readouterr().err


def test_the_call_signal_exercises_the_detectors() -> None:
    x = bench.call_signal(16.0)
    assert x.shape == (16 * 8000,)
    assert "".join(e.digit for e in detect(x)) == "0369"


def test_call_progress_joins_the_chain_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    class ProgressDetector:
        def process(self, frame: AudioFrame) -> list[Any]:
            seen.append(frame.pts)
            return []

    mod = types.ModuleType("media.progress")
    mod.ProgressDetector = ProgressDetector  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "media.progress", mod)
    assert [name for name, _ in bench.stages()][-1] == "progress"
    r = bench.run_bench(seconds=1.0, repeat=1, bound=0.0)
    assert "progress" in r["stages"] and r["chain"]["stages"][-1] == "progress"
    assert len(seen) == 2 * 50  # alone, then in the chain
