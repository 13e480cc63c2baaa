"""media.noise_floor: an idle line's floor, its hum, and the suggested SilenceThreshold."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.emulators.line_audio import Hum, dtmf, noise
from media.frame import SAMPLE_RATE, Samples, to_int16
from media.g711 import ulaw_decode, ulaw_encode
from media.levels import dbm0_to_rms, dbov, mean_abs, threshold_to_dbov
from media.noise_floor import NOMINAL_SPEECH_DBOV, FloorOptions, measure_floor
from media.tones import ToneGenerator

FS = SAMPLE_RATE


def ulaw(x: np.ndarray) -> Samples:
    return ulaw_decode(ulaw_encode(to_int16(x)))


def line(seconds: float, noise_dbm0: float, seed: int = 1, hum: Hum | None = None) -> np.ndarray:
    n = round(seconds * FS)
    x = noise(n, noise_dbm0, np.random.default_rng(seed))
    if hum is not None:
        x = x + hum.generator().render(n)
    return x


def dial_tone(seconds: float) -> np.ndarray:
    return ToneGenerator([350.0, 440.0], [-13.0, -13.0]).render(round(seconds * FS))


@pytest.mark.parametrize("noise_dbm0", [-65.0, -55.0, -45.0])
def test_suggestion_sits_between_the_floor_and_speech(noise_dbm0: float) -> None:
    x = ulaw(line(8.0, noise_dbm0))
    rep = measure_floor(x)
    assert rep.idle_frames == 400 and rep.tones == [] and rep.dtmf == [] and rep.activity_frames == 0
    assert rep.floor_dbov == pytest.approx(dbov(x), abs=0.05)  # all of it is floor (µ-law's own noise included)
    assert rep.floor_dbov == pytest.approx(20 * np.log10(dbm0_to_rms(noise_dbm0) / 32768), abs=2.0)
    s = rep.suggestion
    assert s is not None and s["basis"] == "idle"
    t = s["threshold"]
    assert rep.mean_abs is not None and t > rep.mean_abs["max"]  # every idle frame is silence at T
    assert s["idle_silent_fraction"] == 1.0
    assert threshold_to_dbov(t) == pytest.approx(rep.floor_dbov + 6.0, abs=1.5)  # ≈ the 6 dB margin above
    speech_mean_abs = mean_abs(ulaw(line(1.0, NOMINAL_SPEECH_DBOV + 6.15)))  # -26 dBov, noise-like
    assert t < speech_mean_abs / 4  # at least 12 dB under nominal speech
    assert str(round(s["raw"], 1)) in s["reasoning"] and "p90" in s["reasoning"]


def test_suggestion_follows_the_floor_and_the_margin() -> None:
    quiet = measure_floor(to_int16(line(5.0, -60.0))).suggestion
    loud = measure_floor(to_int16(line(5.0, -50.0))).suggestion
    wide = measure_floor(to_int16(line(5.0, -60.0)), FloorOptions(margin_db=12.0)).suggestion
    assert quiet is not None and loud is not None and wide is not None
    assert loud["threshold"] / quiet["threshold"] == pytest.approx(10 ** (10 / 20), rel=0.05)  # 10 dB more noise
    assert wide["threshold"] / quiet["threshold"] == pytest.approx(2.0, rel=0.1)  # 6 dB more margin


def test_dial_tone_and_digits_are_left_out() -> None:
    x = line(6.0, -60.0)
    x[:2 * FS] += dial_tone(2.0)
    d = dtmf("59", on_ms=100, off_ms=100).astype(np.float64)
    x[4 * FS:4 * FS + len(d)] += d
    rep = measure_floor(ulaw(x))
    assert [t["kind"] for t in rep.tones] == ["dial"]
    assert rep.tones[0]["start"] == pytest.approx(0.0, abs=0.05) and rep.tones[0]["end"] == pytest.approx(2.0, abs=0.1)
    assert "".join(d["digit"] for d in rep.dtmf) == "59"
    quiet_only = measure_floor(ulaw(line(6.0, -60.0)))
    assert rep.floor_dbov == pytest.approx(quiet_only.floor_dbov, abs=0.5)  # the tone did not raise the floor
    assert rep.suggestion is not None and quiet_only.suggestion is not None
    assert abs(rep.suggestion["threshold"] - quiet_only.suggestion["threshold"]) <= 2
    assert rep.idle_frames < 300 - 2 * 5  # 2 s of tone, 0.3 s of digits and guards
    assert "dial tone is not the noise floor" in rep.to_text()


def test_a_recording_that_is_all_dial_tone_estimates_the_floor_under_it() -> None:
    floor = line(5.0, -55.0)
    rep = measure_floor(to_int16(dial_tone(5.0) + floor))
    assert rep.under_tone is not None and rep.suggestion is not None
    assert rep.suggestion["basis"] == "under-dial-tone"
    assert rep.under_tone["floor_dbov"] == pytest.approx(dbov(to_int16(floor)), abs=0.5)
    assert any("--on-call" in n for n in rep.notes)
    # through µ-law the tone brings its own quantisation noise (~38 dB under it): the estimate reads
    # high, so the suggestion errs on the safe side (a higher threshold)
    coded = measure_floor(ulaw(dial_tone(5.0) + floor))
    assert coded.under_tone is not None and coded.suggestion is not None
    assert dbov(to_int16(floor)) < coded.under_tone["floor_dbov"] < -10.0 - 6.15 - 33
    assert coded.suggestion["threshold"] > rep.suggestion["threshold"]


def test_activity_is_counted_not_averaged_in() -> None:
    x = line(6.0, -60.0)
    quiet = dbov(ulaw(x))
    x[3 * FS:3 * FS + 800] += line(0.1, -20.0, seed=7)  # a click / a word
    rep = measure_floor(ulaw(x))
    assert 5 <= rep.activity_frames <= 7
    assert rep.floor_dbov == pytest.approx(quiet, abs=0.2)


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_mains_hum_is_found_and_raises_the_suggestion(mains: float) -> None:
    hum = Hum(mains, (None, None, -45.0, None, -50.0))  # 3rd and 5th harmonics, what a phone band leaves
    with_hum = measure_floor(ulaw(line(5.0, -65.0, hum=hum)))
    without = measure_floor(ulaw(line(5.0, -65.0)))
    assert without.hum is None
    h = with_hum.hum
    assert h is not None and h["mains_hz"] == mains
    assert [c["hz"] for c in h["harmonics"]] == [3 * mains, 5 * mains]
    assert [c["dbov"] for c in h["harmonics"]] == pytest.approx([-45.0 - 6.15, -50.0 - 6.15], abs=1.0)
    assert h["share"] > 0.8
    assert with_hum.suggestion is not None and without.suggestion is not None
    assert with_hum.suggestion["threshold"] > 2 * without.suggestion["threshold"]
    assert f"hum: {int(mains)} Hz mains" in with_hum.to_text()


def test_driver_filler_zeros_are_left_out_but_a_digitally_silent_line_is_its_own_floor() -> None:
    x = ulaw(line(5.0, -60.0))
    x[:FS] = 0  # a modem between off-hook and receive
    rep = measure_floor(x)
    assert rep.zero_frames == 50 and rep.idle_frames == 200
    silent = measure_floor(np.zeros(5 * FS, dtype=np.int16))
    assert silent.zero_frames == 0 and silent.idle_frames == 250
    assert silent.suggestion is not None and silent.suggestion["threshold"] == 1
    assert any("digitally silent" in n for n in silent.notes)


def test_no_audio_no_suggestion() -> None:
    rep = measure_floor(np.zeros(0, dtype=np.int16))
    assert rep.suggestion is None and rep.frames == 0 and rep.notes == ["no audio"]
    short = measure_floor(ulaw(line(0.5, -60.0)))
    assert short.suggestion is None and any("no suggestion" in n for n in short.notes)
    assert short.to_json()["suggestion"] is None


def test_a_hopelessly_noisy_line_is_clamped_and_said_so() -> None:
    rep = measure_floor(ulaw(line(3.0, -5.0)))
    assert rep.suggestion is not None and rep.suggestion["threshold"] == 1000 and rep.suggestion["clamped"]
    assert any("too noisy" in n for n in rep.notes)


@pytest.mark.parametrize("seconds", [0.8, 2.0, 6.0])
@pytest.mark.parametrize("step", [1, 256])  # 256: an 8-bit linear modem codec
def test_plain_noise_is_not_taken_for_hum(seconds: float, step: int) -> None:
    for seed in range(4):
        x = np.round(line(seconds, -45.0, seed=seed) / step) * step
        rep = measure_floor(to_int16(x))
        assert rep.hum is None, (seed, rep.hum)
