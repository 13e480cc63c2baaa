"""The emulator's line audio: DTMF checked by multimon-ng (independent), tone plans by spectrum and envelope."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from drivers.emulators.line_audio import TONE_PLANS, CadencedTone, ToneSpec, dtmf, tone_samples
from media.g711 import ulaw_roundtrip
from media.levels import rms_to_dbm0


def multimon_dtmf(x: np.ndarray) -> str:
    """Digits multimon-ng hears in 8 kHz int16 audio (raw input resampled by multimon to 22050 Hz)."""
    padded = np.concatenate([np.zeros(800, np.int16), x, np.zeros(800, np.int16)])
    sox = subprocess.run(["sox", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", "-",
                          "-t", "raw", "-r", "22050", "-e", "signed", "-b", "16", "-c", "1", "-"],
                         input=padded.astype("<i2").tobytes(), capture_output=True, check=True)
    out = subprocess.run(["multimon-ng", "-q", "-a", "DTMF", "-t", "raw", "-"], input=sox.stdout,
                         capture_output=True, check=True)
    lines = out.stdout.decode().splitlines()
    return "".join(line.split(":")[1].strip() for line in lines if line.startswith("DTMF:"))


def level_at(x: np.ndarray, f: float) -> float:
    """dBm0 of the sine component at exactly ``f`` (DFT at that frequency over the whole block)."""
    t = np.arange(len(x)) / 8000
    amp = 2 * abs(np.dot(x.astype(np.float64), np.exp(-2j * np.pi * f * t))) / len(x)
    return rms_to_dbm0(amp / np.sqrt(2))


def test_dtmf_digits_through_ulaw_are_what_multimon_ng_hears() -> None:
    x = ulaw_roundtrip(dtmf("0123456789*#ABCD", on_ms=80, off_ms=80, level_dbm0=-10))
    assert multimon_dtmf(x) == "0123456789*#ABCD"


def test_dtmf_levels_twist_and_offset() -> None:
    x = dtmf("5", on_ms=1000, off_ms=0, level_dbm0=-12.0, twist_db=-6.0, freq_offset_pct=1.5)
    assert len(x) == 8000
    low, high = 770 * 1.015, 1336 * 1.015
    assert level_at(x, low) == pytest.approx(-12.0, abs=0.1)
    assert level_at(x, high) == pytest.approx(-18.0, abs=0.1)
    assert level_at(x, 770) < -25  # really offset
    with pytest.raises(ValueError):
        dtmf("5E")


@pytest.mark.parametrize(("country", "kind", "freqs", "cadence"), [
    ("us", "busy", (480, 620), (0.5, 0.5)),
    ("us", "reorder", (480, 620), (0.25, 0.25)),
    ("uk", "busy", (400,), (0.375, 0.375)),
    ("uk", "reorder", (400,), (0.4, 0.35, 0.225, 0.525)),
    ("eu", "busy", (425,), (0.5, 0.5)),
])
def test_call_progress_cadence_and_frequencies(country: str, kind: str, freqs: tuple[int, ...],
                                               cadence: tuple[float, ...]) -> None:
    spec = TONE_PLANS[country][kind]
    assert spec.freqs == tuple(float(f) for f in freqs) and spec.cadence == cadence
    x = tone_samples(spec, 2 * sum(cadence))
    assert len(x) == 2 * round(sum(cadence) * 8000)
    # on/off envelope: a sample is "on" when the tone is non-zero within +-2 samples (zero crossings)
    on = np.convolve((x != 0).astype(int), np.ones(5, dtype=int), mode="same") > 0
    edges = np.flatnonzero(np.diff(on.astype(int))) + 1
    runs = np.diff(np.concatenate([[0], edges, [len(x)]]))
    expected = [round(d * 8000) for d in cadence] * 2
    assert on[0]  # starts with the tone
    assert len(runs) == len(expected)
    assert all(abs(int(r) - e) <= 3 for r, e in zip(runs, expected, strict=True)), (runs, expected)
    burst = x[:round(cadence[0] * 8000)]
    for f, lv in zip(freqs, spec.levels_dbm0, strict=True):
        assert level_at(burst, f) == pytest.approx(lv, abs=0.3)


def test_continuous_tone_is_phase_continuous_across_blocks() -> None:
    spec = ToneSpec((350.0, 440.0), (-13.0, -13.0))
    g = CadencedTone(spec)
    blocks = np.concatenate([g.render(n) for n in (1, 159, 160, 7, 873)])
    whole = CadencedTone(spec).render(1200)
    np.testing.assert_allclose(blocks, whole, atol=1e-6)
