"""``gatewayd analyze`` and media.analysis."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gatewayd.cli import main
from media.analysis import ANALYSERS, AnalysisOptions, analyse
from media.dtmf import DtmfSender
from media.frame import AudioFrame, to_int16
from media.resample import resample
from media.tones import tone
from media.wav import encode_wav, write_wav
from tests.dtmf_signals import add_noise, line

FS = 8000


def _signal() -> np.ndarray:
    """1 s near-silence, digits 1 2 # (100 ms on/off from 1.0 s), silence to 3.0 s, 1 kHz at -20 dBm0 to 4.5 s."""
    s = DtmfSender("12#", tone_ms=100, gap_ms=100)
    x = np.concatenate([np.zeros(FS), s.read(s.total_samples).astype(float), np.zeros(FS + 4000),
                        tone([1000.0], -20.0, 12000).astype(float)])
    return line(add_noise(x, -70.0, seed=9), "ulaw")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["analyze", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "call.wav"
    write_wav(path, _signal())
    rc, out, _ = _run(capsys, str(path), "--json")
    assert rc == 0
    r = json.loads(out)
    assert r["file"] == str(path) and r["duration"] == 4.5 and r["sample_rate"] == 8000
    assert (r["format"], r["bits_per_sample"], r["source_rate"], r["channels"]) == ("PCM", 16, 8000, 1)
    assert [d["digit"] for d in r["dtmf"]] == ["1", "2", "#"]
    assert [t for d in r["dtmf"] for t in (d["start"], d["end"])] == pytest.approx(
        [1.0, 1.1, 1.2, 1.3, 1.4, 1.5], abs=0.006)
    assert all(d["level_dbm0"] == pytest.approx(-10.0, abs=0.3) for d in r["dtmf"])
    per = r["levels"]["per_second"]
    assert [p["start"] for p in per] == [0, 1, 2, 3, 4] and per[-1]["end"] == 4.5
    assert per[0]["dbov"] < -60 and per[4]["dbov"] == pytest.approx(-26.15, abs=0.2)
    sil = r["silence"]
    assert sil["threshold"] == 200 and sil["threshold_dbov"] == pytest.approx(-42.3, abs=0.05)
    assert [(s["start"], s["end"]) for s in sil["spans"]] == [(0.0, 1.0), (1.5, 3.0)]
    assert sil["frame_mean_abs"]["max"] > 1000 and sil["frame_mean_abs"]["min"] < 10


def test_threshold_changes_what_is_silence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The 1 kHz tone at -20 dBm0 has mean |x| ≈ 2,050: silent at T=3000, voiced at 200."""
    path = tmp_path / "t.wav"
    write_wav(path, _signal())
    _, out, _ = _run(capsys, str(path), "--json", "--threshold", "3000", "--min-silence", "0")
    spans = json.loads(out)["silence"]["spans"]
    assert spans[-1]["end"] == 4.5 and spans[-1]["start"] == 1.5  # the digit gaps are spans too at min 0
    assert (1.1, 1.2) in [(s["start"], s["end"]) for s in spans]


def test_text_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "call.wav"
    write_wav(path, _signal())
    rc, out, _ = _run(capsys, str(path))
    assert rc == 0
    assert "dtmf: 3 digit(s): 12#" in out
    assert "silence: threshold 200 (≈ -42.3 dBov)" in out and "0.000 –     1.000 s" in out
    assert "levels: overall" in out and out.count(" dBov  ") == 5


def test_any_wav_is_converted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 16 kHz stereo recording is analysed as 8 kHz mono with the same digits."""
    x8 = _signal().astype(float)
    x16 = resample(x8, 8000, 16000)
    stereo = to_int16(np.stack([x16, x16], axis=1))
    path = tmp_path / "st.wav"
    path.write_bytes(encode_wav(stereo, 16000))
    _, out, _ = _run(capsys, str(path), "--json")
    r = json.loads(out)
    assert (r["source_rate"], r["channels"]) == (16000, 2)
    assert "".join(d["digit"] for d in r["dtmf"]) == "12#"


def test_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, str(tmp_path / "missing.wav"))
    assert rc == 66 and out == "" and "cannot read" in err
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + struct.pack("<I", 4) + b"WAVX")
    rc, out, err = _run(capsys, str(bad))
    assert rc == 65 and out == "" and "not a RIFF/WAVE file" in err
    with pytest.raises(SystemExit):
        main(["analyze", str(bad), "--threshold", "0"])
    assert "0 < T" in capsys.readouterr().err


def test_analysers_are_pluggable() -> None:
    class Counter:
        key = "frames"

        def __init__(self, options: AnalysisOptions) -> None:
            self.n = 0

        def process(self, frame: AudioFrame) -> None:
            self.n += 1

        def finish(self, duration: float) -> Any:
            return {"count": self.n}

        def describe(self, result: Any) -> list[str]:
            return [f"frames: {result['count']}"]

    report = analyse(np.zeros(1000, np.int16), analysers=[*ANALYSERS, Counter])
    assert report.to_json()["frames"] == {"count": 7}  # 6 whole frames and the 40-sample tail
    assert "frames: 7" in report.to_text()
    assert set(report.to_json()) >= {"levels", "silence", "dtmf", "frames", "duration"}


def test_call_progress_and_caller_id_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from media.callerid import Message, modulate
    from media.progress import render_tone

    x = np.concatenate([np.zeros(4000, np.int16), modulate(Message.mdmf(number="5551234567", name="ALICE"), "bell202"),
                        np.zeros(8000, np.int16), render_tone("uk", "busy", 3.0)])
    p = tmp_path / "line.wav"
    write_wav(p, x)
    rc, out, _ = _run(capsys, str(p), "--json", "--country", "uk")
    assert rc == 0
    report = json.loads(out)
    assert report["call_progress"]["country"] == "uk"
    [busy] = report["call_progress"]["events"]
    assert busy["kind"] == "busy" and abs(busy["start"] - (len(x) - 24000) / 8000) < 0.05
    [msg] = report["caller_id"]["messages"]
    assert (msg["number"], msg["name"], msg["checksum_ok"]) == ("5551234567", "ALICE", True)
