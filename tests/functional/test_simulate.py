"""gatewayd simulate through the CLI: the README's scenarios, determinism, scenario errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gatewayd.cli import main
from media.wav import read_wav

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "config" / "scenarios"


def simulate(capsys: pytest.CaptureFixture[str], scenario: Path, buckets: Path) -> dict[str, Any]:
    assert main(["simulate", str(scenario), "--json", "--buckets", str(buckets)]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_voicemail_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = simulate(capsys, SCENARIOS / "voicemail.yaml", tmp_path / "b")
    types = [(t["event"]["InvocationEventType"], (t["event"].get("ActionData") or {}).get("Type"))
             for t in doc["transcript"]]
    assert types == [("NEW_INBOUND_CALL", None), ("ACTION_SUCCESSFUL", "RecordAudio"), ("HANGUP", "Hangup")]
    [rec] = doc["recordings"]
    assert rec["bucket"] == "messages" and rec["key"].startswith("inbox/") and rec["terminator"] == "#"
    audio = read_wav(rec["path"])
    # the caller's words are in it, the '#' tone (pressed at 11.5 s) is not: it ends in the pause before it
    # greeting 5.82 s + beep 0.4 s, the caller speaks at 6.5 s: about 0.28 s of silence first
    assert np.abs(audio[:2000].astype(float)).mean() < 50
    assert np.abs(audio[2400:4000].astype(float)).mean() > 300
    assert np.abs(audio[len(audio) // 3: 2 * len(audio) // 3].astype(float)).mean() > 300
    assert np.abs(audio[-800:].astype(float)).max() < 100
    assert doc["end"] == ["completed"]


def test_simulation_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def fingerprint(doc: dict[str, Any]) -> list[Any]:
        out: list[Any] = [doc["media_seconds"], [r["seconds"] for r in doc["recordings"]]]
        for t in doc["transcript"]:
            ev = t["event"]
            out.append((ev["Sequence"], ev["InvocationEventType"], json.dumps(ev.get("ActionData", {}).get("Parameters",
                                                                                              {}).get("DurationInSeconds"))))
        return out

    runs = [fingerprint(simulate(capsys, SCENARIOS / "voicemail.yaml", tmp_path / f"b{i}")) for i in range(3)]
    assert runs[0] == runs[1] == runs[2]


def test_scenario_errors_point_at_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("handler: python:gatewayd.handlers.voicemail:handler\ncaller:\n  hangup_at: 5\n  digts: []\n")
    assert main(["simulate", str(bad)]) == 78
    assert f"{bad}:4:3: caller: unknown key 'digts' (did you mean 'digits'?)" in capsys.readouterr().err
