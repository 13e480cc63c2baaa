"""``gatewayd analyze FILE.wav --plot OUT.png`` (gatewayd.analysis_plot)."""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from gatewayd.analysis_plot import plot_data
from gatewayd.cli import main
from media.analysis import analyse
from media.dtmf import DtmfSender
from media.levels import threshold_to_dbov
from media.tones import tone
from media.wav import write_wav
from tests.dtmf_signals import add_noise, line

FS = 8000


def _signal() -> np.ndarray:
    """0.5 s of 440 Hz, 1 s near-silence, digits 4 7 (100 ms on, 100 ms apart, from 1.5 s), 1 s
    near-silence, then 0.5 s of 1 kHz at -20 dBm0: 3.3 s."""
    s = DtmfSender("47", tone_ms=100, gap_ms=100)
    x = np.concatenate([tone([440.0], -20.0, 4000).astype(float), np.zeros(FS),
                        s.read(s.total_samples).astype(float), np.zeros(FS), tone([1000.0], -20.0, 4000).astype(float)])
    return line(add_noise(x, -70.0, seed=3), "ulaw")


def _png_header(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file, after checking its signature and the IHDR chunk's CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body = data[16:16 + length]
    (crc,) = struct.unpack(">I", data[16 + length:20 + length])
    assert crc == zlib.crc32(kind + body)
    assert data.endswith(b"IEND\xaeB`\x82")
    w, h = struct.unpack(">II", body[:8])
    return w, h


def test_plot_data_has_the_digits_silence_spans_and_threshold_of_the_analysis() -> None:
    x = _signal()
    report = analyse(x).to_json()
    data = plot_data(x, report)
    assert [d.label for d in data.dtmf] == ["4", "7"]
    assert [t for d in data.dtmf for t in (d.start, d.end)] == pytest.approx([1.5, 1.6, 1.7, 1.8], abs=0.006)
    assert [(s.start, s.end) for s in data.silence] == [(0.5, 1.5), (1.8, 2.8)]
    assert data.threshold == 200 and data.threshold_dbov == pytest.approx(threshold_to_dbov(200))
    assert data.duration == 3.3 and len(data.wave) == len(x) and data.wave.max() <= 1.0
    assert len(data.frame_t) == len(data.frame_level) == 165
    # a frame is drawn under the threshold line exactly when silence detection calls it silent
    silent = np.abs(x[:165 * 160].reshape(165, 160).astype(np.int64)).mean(axis=1) < 200
    assert np.array_equal(data.frame_level < data.threshold_dbov, silent)


def test_plot_data_follows_the_threshold() -> None:
    x = _signal()
    from media.analysis import AnalysisOptions

    report = analyse(x, AnalysisOptions(threshold=2000)).to_json()
    data = plot_data(x, report)
    assert data.threshold == 2000 and data.threshold_dbov == pytest.approx(threshold_to_dbov(2000))
    spans = [(s.start, s.end) for s in data.silence]
    assert spans == [(s["start"], s["end"]) for s in report["silence"]["spans"]]
    assert spans[0] == (0.0, 1.5)  # the -20 dBm0 tone at the start is now under the threshold


def test_cli_writes_a_png_of_the_requested_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav, png = tmp_path / "call.wav", tmp_path / "call.png"
    write_wav(wav, _signal())
    assert main(["analyze", str(wav), "--plot", str(png), "--size", "800x500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plot"] == str(png) and [d["digit"] for d in out["dtmf"]] == ["4", "7"]
    assert _png_header(png) == (800, 500)
    from matplotlib.image import imread

    pixels = imread(png)  # decodes the whole file
    assert pixels.shape[:2] == (500, 800) and pixels[..., :3].std() > 0.1  # a drawing, not a blank
    assert main(["analyze", str(wav), "--plot", str(png)]) == 0
    assert _png_header(png) == (1200, 600)
    assert capsys.readouterr().out.endswith(f"plot: {png}\n")


def test_the_drawing_carries_the_marks(tmp_path: Path) -> None:
    from gatewayd.analysis_plot import build_figure

    x = _signal()
    fig = build_figure(plot_data(x, analyse(x).to_json()))
    gids = [a.get_gid() for ax in fig.axes for a in (*ax.patches, *ax.lines, *ax.texts)]
    assert gids.count("dtmf") == 4 and gids.count("silence") == 4  # on both panels
    assert gids.count("threshold") == 1 and gids.count("frame-level") == 1 and gids.count("waveform") == 1
    labels = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "dtmf-label"]
    assert labels == ["4", "7"]


def test_bad_size_and_size_without_plot_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "call.wav"
    write_wav(wav, _signal())
    with pytest.raises(SystemExit) as e:
        main(["analyze", str(wav), "--plot", str(tmp_path / "x.png"), "--size", "800"])
    assert e.value.code == 2 and "WIDTHxHEIGHT" in capsys.readouterr().err
    assert main(["analyze", str(wav), "--size", "800x500"]) == 64
    assert "--size goes with --plot" in capsys.readouterr().err


def test_missing_matplotlib_names_the_extra_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    wav, png = tmp_path / "call.wav", tmp_path / "call.png"
    write_wav(wav, _signal())
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert main(["analyze", str(wav), "--plot", str(png)]) == 69
    captured = capsys.readouterr()
    assert "gatewayd[plot]" in captured.err and "matplotlib" in captured.err
    assert captured.out == "" and not png.exists()


def test_unwritable_plot_still_prints_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "call.wav"
    write_wav(wav, _signal())
    assert main(["analyze", str(wav), "--plot", str(tmp_path / "no" / "such" / "dir.png")]) == 73
    captured = capsys.readouterr()
    assert "cannot write the plot" in captured.err and "dtmf: 2 digit(s): 47" in captured.out
