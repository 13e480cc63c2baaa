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


def level(x: np.ndarray, a: float, b: float) -> float:
    seg = x[int(a * 8000):int(b * 8000)].astype(float)
    return float(20 * np.log10(np.sqrt(np.mean(seg * seg)) / 32768))


def test_voicefocus_toggle_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = simulate(capsys, SCENARIOS / "voicefocus-toggle.yaml", tmp_path / "b")
    got = [(t["event"]["InvocationEventType"], t["event"].get("ActionData", {}).get("ReceivedDigits"),
            t["event"].get("ActionData", {}).get("Parameters", {}).get("Enable")) for t in doc["transcript"]]
    assert got[2:6] == [("DIGITS_RECEIVED", "1", None), ("ACTION_SUCCESSFUL", None, True),
                        ("DIGITS_RECEIVED", "0", None), ("ACTION_SUCCESSFUL", None, False)]
    [rec] = doc["recordings"]
    assert rec["channels"] == 1 and abs(rec["seconds"] - 21.0) < 0.1
    x = read_wav(rec["path"])
    off, on, off_again = level(x, 1.0, 4.5), level(x, 9.3, 10.8), level(x, 19.5, 20.5)  # noise-only stretches
    assert on < off - 8 and on < off_again - 8  # pink noise at -30 dBm0 is cut by VoiceFocus while on
    assert abs(off - off_again) < 2


def test_bridge_with_voicefocus_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = simulate(capsys, SCENARIOS / "bridge-voicefocus.yaml", tmp_path / "b")
    events = [t["event"] for t in doc["transcript"]]
    kinds = [(e["InvocationEventType"], e.get("ActionData", {}).get("Type")) for e in events]
    assert kinds[:3] == [("NEW_INBOUND_CALL", None), ("ACTION_SUCCESSFUL", "CallAndBridge"),
                         ("ACTION_SUCCESSFUL", "StartCallRecording")]
    legs = events[1]["CallDetails"]["Participants"]
    assert [(p["ParticipantTag"], p["Direction"], p["Status"]) for p in legs] == [
        ("LEG-A", "Inbound", "Connected"), ("LEG-B", "Outbound", "Connected")]
    assert legs[1]["To"] == "+15550100002" and legs[1]["From"] == "+15550100001"
    # the caller hung up first (HANGUP for LEG-A), the handler then hung up LEG-B (HANGUP for LEG-B)
    hangups = [e["ActionData"]["Parameters"]["ParticipantTag"] for e in events if e["InvocationEventType"] == "HANGUP"]
    assert hangups == ["LEG-A", "LEG-B"]
    [rec] = doc["recordings"]
    assert rec["channels"] == 2
    import wave

    with wave.open(rec["path"]) as w:
        lr = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    # left: the caller (speaks from 4 s after answer, i.e. about 1 s into the bridge); right: the far end
    # ("Garage, good morning." 0.5 s after it answers) — both with VoiceFocus on, so the noise between is low
    right_speech, right_noise = level(lr[:, 1], 0.6, 1.6), level(lr[:, 1], 2.5, 3.0)
    assert right_speech > right_noise + 15
    assert level(lr[:, 0], 1.2, 3.0) > level(lr[:, 0], 0.1, 0.7) + 15
