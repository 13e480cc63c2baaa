"""DTMF bursts, the SendDigits sender, beeps and tone sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from media.dtmf import DTMF_FREQS, KEYPAD, PAUSE_MS, DtmfSender, detect, dtmf_tone
from media.levels import dbm0, rms_to_dbm0
from media.tones import ToneSequence, beep


def _tone_level(x: np.ndarray, f: float) -> float:
    """dBm0 of the component at ``f`` (least-squares fit of a sine at exactly f)."""
    n = np.arange(x.shape[0])
    basis = np.stack([np.cos(2 * np.pi * f * n / 8000), np.sin(2 * np.pi * f * n / 8000)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x.astype(np.float64), rcond=None)
    return rms_to_dbm0(math.hypot(*coef) / math.sqrt(2))


def _peak_freqs(x: np.ndarray, k: int = 2) -> list[float]:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    freqs = np.fft.rfftfreq(x.shape[0], 1 / 8000)
    peaks = [i for i in range(1, spec.shape[0] - 1) if spec[i] >= spec[i - 1] and spec[i] >= spec[i + 1]]
    top = sorted(peaks, key=lambda i: spec[i], reverse=True)[:k]
    return sorted(float(freqs[i]) for i in top)


@pytest.mark.parametrize("digit", list(KEYPAD))
def test_burst_has_the_digits_two_frequencies_at_the_level(digit: str) -> None:
    x = dtmf_tone(digit, 8000, level_dbm0=-10.0)
    lo, hi = DTMF_FREQS[digit]
    assert _peak_freqs(x) == pytest.approx([lo, hi], abs=1.0)
    assert _tone_level(x, lo) == pytest.approx(-10.0, abs=0.05)
    assert _tone_level(x, hi) == pytest.approx(-10.0, abs=0.05)


def test_burst_twist_offsets_and_length() -> None:
    x = dtmf_tone("5", 8000, level_dbm0=-12.0, twist_db=-6.0, low_offset=0.02, high_offset=-0.015)
    assert x.shape == (8000,) and x.dtype == np.int16
    assert _peak_freqs(x) == pytest.approx([770 * 1.02, 1336 * 0.985], abs=1.0)
    assert _tone_level(x, 770 * 1.02) == pytest.approx(-12.0, abs=0.05)
    assert _tone_level(x, 1336 * 0.985) == pytest.approx(-18.0, abs=0.05)


def test_lowercase_letters_and_bad_digits() -> None:
    np.testing.assert_array_equal(dtmf_tone("a", 160), dtmf_tone("A", 160))
    with pytest.raises(ValueError, match="not a DTMF digit"):
        dtmf_tone("E", 160)


def test_sender_timeline_in_samples() -> None:
    s = DtmfSender("12,#", tone_ms=100, gap_ms=60)
    # 1: 800 on, 480 gap, 2: 800 on (no gap before ','), ',': 4000, #: 800
    assert s.total_samples == 800 + 480 + 800 + PAUSE_MS * 8 + 800
    x = s.read(s.total_samples)
    assert s.done and s.remaining == 0
    assert np.count_nonzero(x[800:1280]) == 0 and np.count_nonzero(x[1280 + 800:1280 + 800 + 4000]) == 0
    assert np.count_nonzero(x[:800]) > 780 and np.count_nonzero(x[-800:]) > 780
    assert "".join(e.digit for e in detect(np.concatenate([x, np.zeros(800, np.int16)]))) == "12#"
    np.testing.assert_array_equal(s.read(160), np.zeros(160, np.int16))


def test_sender_reads_the_same_in_any_chunks() -> None:
    whole = DtmfSender("159D*0", tone_ms=250, gap_ms=100)
    ref = whole.read(whole.total_samples)
    s = DtmfSender("159D*0", tone_ms=250, gap_ms=100)
    fr = s.frames(start_pts=4000)
    assert fr[0].pts == 4000 and all(f.samples.shape == (160,) for f in fr)
    got = np.concatenate([f.samples for f in fr])
    np.testing.assert_array_equal(got[:ref.shape[0]], ref)
    assert np.count_nonzero(got[ref.shape[0]:]) == 0


def test_sender_default_is_chime_250ms_tones_detected_back() -> None:
    digits = "0123456789*#ABCD"
    s = DtmfSender(digits)
    x = s.read(s.total_samples + 800)
    events = detect(x)
    assert "".join(e.digit for e in events) == digits
    for i, e in enumerate(events):
        assert abs(e.start - i * 350 * 8) <= 40 and abs(e.duration - 2000) <= 80


def test_sender_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="invalid character 'x'"):
        DtmfSender("12x")
    with pytest.raises(ValueError):
        DtmfSender("1", tone_ms=0)


def test_beep() -> None:
    x = beep(1000.0, -12.0, 4000)
    assert x.shape == (4000,)
    assert _peak_freqs(x, 1) == pytest.approx([1000.0], abs=2.0)
    assert dbm0(x[400:3600]) == pytest.approx(-12.0, abs=0.05)
    assert abs(int(x[0])) < 200 and abs(int(x[-1])) < 200  # raised-cosine edges, no click


def test_tone_sequence_chunking_and_silence() -> None:
    def make() -> ToneSequence:
        q = ToneSequence()
        q.add([440.0], -10.0, 1000, ramp=40)
        q.add([], [], 500)
        q.add([350.0, 440.0], [-13.0, -13.0], 777)
        return q

    ref = make().read(2277)
    q = make()
    got = np.concatenate([q.read(n) for n in (1, 159, 160, 500, 1000, 457)])
    np.testing.assert_array_equal(got, ref)
    assert np.count_nonzero(ref[1000:1500]) == 0
    assert q.remaining == 0
    with pytest.raises(ValueError):
        make().add([440.0], -10.0, 10, ramp=6)
