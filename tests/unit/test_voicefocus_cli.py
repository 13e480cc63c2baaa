"""``gatewayd voicefocus`` and the pure parts of ``gatewayd bench voicefocus`` (no shared harness needed)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from gatewayd.bench import voicefocus as bench
from gatewayd.cli import main
from media.wav import read_info, read_wav


def write_pcm(path: Path, x: np.ndarray, rate: int, channels: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(x, dtype="<i2").tobytes())


def test_command_any_wav_to_8k_mono_with_less_noise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rate = 16000
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((3 * rate, 2)) * 2000
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    write_pcm(src, np.clip(noise, -32768, 32767).astype(np.int16).reshape(-1), rate, 2)
    assert main(["voicefocus", str(src), str(dst)]) == 0
    info = read_info(dst)
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (8000, 1, 16)
    assert info.frames == 3 * 8000
    x, y = read_wav(src).astype(float), read_wav(dst).astype(float)
    assert 10 * np.log10(np.mean(x[8000:] ** 2) / np.mean(y[8000:] ** 2)) >= 12.0
    assert "out.wav" in capsys.readouterr().out


def test_command_backend_choice(tmp_path: Path) -> None:
    """--backend picks the suppressor; the default is the learned one."""
    from media.voicefocus import enhance, enhance_with

    rng = np.random.default_rng(2)
    t = np.arange(2 * 8000) / 8000
    x = np.clip(4000 * np.sin(2 * np.pi * 300 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
                + rng.standard_normal(len(t)) * 1500, -32768, 32767).astype(np.int16)
    src = tmp_path / "in.wav"
    write_pcm(src, x, 8000, 1)
    outs = {}
    for args in ([], ["--backend", "builtin"], ["--backend", "learned"]):
        dst = tmp_path / f"out{len(outs)}.wav"
        assert main(["voicefocus", *args, str(src), str(dst)]) == 0
        outs[" ".join(args)] = read_wav(dst)
    assert np.array_equal(outs["--backend builtin"], enhance(x))
    assert np.array_equal(outs["--backend learned"], enhance_with(x, "learned"))
    assert np.array_equal(outs[""], outs["--backend learned"])
    assert not np.array_equal(outs["--backend builtin"], outs["--backend learned"])
    with pytest.raises(SystemExit) as e:
        main(["bench", "voicefocus", "--backend", "nope"])
    assert e.value.code == 2


def test_command_bad_input_clear_error_and_no_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    src.write_bytes(b"this is not audio")
    assert main(["voicefocus", str(src), str(dst)]) == 65
    assert "not a RIFF/WAVE file" in capsys.readouterr().err
    assert not dst.exists()
    assert main(["voicefocus", str(tmp_path / "missing.wav"), str(dst)]) == 65
    assert "cannot read" in capsys.readouterr().err


def test_command_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.wav"
    write_pcm(src, np.zeros(800, dtype=np.int16), 8000, 1)
    assert main(["voicefocus", str(src), str(tmp_path / "no" / "such" / "dir" / "o.wav")]) == 73
    assert "cannot write" in capsys.readouterr().err


def test_bench_without_harness_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["bench", "voicefocus", "--skip-speed", "--json", "--harness", str(tmp_path / "nope")])
    assert rc == bench.EX_HARNESS
    cap = capsys.readouterr()
    assert "harness not found" in cap.err
    assert "harness not found" in json.loads(cap.out)["error"]


def test_bench_missing_python_without_venv_creation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = tmp_path / "ns"
    h.mkdir()
    (h / "eval_ns.py").write_text("")
    (h / "make_corpus.py").write_text("")
    rc = main(["bench", "voicefocus", "--skip-speed", "--harness", str(h), "--no-create-venv",
               "--harness-python", str(tmp_path / "no-python")])
    assert rc == bench.EX_HARNESS
    assert "not found" in capsys.readouterr().err


METHOD = bench.METHODS["learned"]


def summary_file(tmp_path: Path, d_pesq: float, d_stoi: float, babble: float) -> Path:
    p = tmp_path / "summary.json"
    agg = dict(n=28, d_pesq=d_pesq, d_stoi=d_stoi, d_sisdr=5.0, pesq=2.3, pesq_fail=0)
    p.write_text(json.dumps({METHOD: dict(
        all=agg, n_clips=1, resid_lag_median=0.0, latency=160,
        by_noise={"babble": dict(agg, d_stoi=babble), "white": agg})}))
    return p


def test_summary_parsed_and_bounds_checked(tmp_path: Path) -> None:
    ok = bench.parse_summary(summary_file(tmp_path, 0.61, 0.001, -0.01), METHOD)
    assert bench.check_quality("synthetic", ok) == []
    bad = bench.parse_summary(summary_file(tmp_path, 0.59, -0.001, -0.03), METHOD)
    miss = bench.check_quality("synthetic", bad)
    assert len(miss) == 3 and "PESQ" in miss[0] and "babble" in miss[2]
    assert bench.check_quality("natural", bench.parse_summary(summary_file(tmp_path, 0.56, 0.0, -0.02), METHOD)) == []
    assert bench.check_speed(dict(rtf=149.0, p99_ms=1.2)) and not bench.check_speed(dict(rtf=151.0, p99_ms=0.4))


def test_summary_without_our_method_is_a_harness_error(tmp_path: Path) -> None:
    p = tmp_path / "summary.json"
    p.write_text(json.dumps({"other": {}}))
    with pytest.raises(bench.HarnessError):
        bench.parse_summary(p, METHOD)


def test_speed_signal_is_deterministic_int16() -> None:
    a, b = bench.speech_like(2.0), bench.speech_like(2.0)
    assert a.dtype == np.int16 and len(a) == 16000 and np.array_equal(a, b)
