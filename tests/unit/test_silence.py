"""Silence detection in the SilenceThreshold unit (SPEC.md §4)."""

from __future__ import annotations

import numpy as np
import pytest

from media import levels
from media.frame import AudioFrame, frames, to_int16
from media.silence import SilenceDetector, frame_dbov, frame_mean_abs, frames_for_seconds
from media.tones import tone


def _frame_with_mean_abs(v: int) -> np.ndarray:
    """A 160-sample frame whose mean |x| is exactly ``v`` (alternating signs)."""
    return np.array([v, -v] * 80, dtype=np.int16)


def test_frame_mean_abs_and_dbov() -> None:
    x = np.concatenate([_frame_with_mean_abs(5), np.full(160, -32768, np.int16), tone([1000.0], -10.0, 160), [1, 2]])
    m = frame_mean_abs(x)
    assert m.shape == (3,)  # the 2-sample tail is not a frame
    assert m[0] == 5 and m[1] == 32768
    assert m[2] == pytest.approx(levels.mean_abs(x[320:480]))
    db = frame_dbov(x)
    assert db[2] == pytest.approx(-16.15, abs=0.05)
    assert db[1] == pytest.approx(0.0, abs=1e-9)
    assert frame_dbov(np.zeros(320, np.int16)).tolist() == [levels.FLOOR_DB, levels.FLOOR_DB]


def test_threshold_is_strict_mean_abs() -> None:
    det = SilenceDetector(threshold=200, frames_needed=1)
    assert det.feed(_frame_with_mean_abs(199)) is True
    det = SilenceDetector(threshold=200, frames_needed=1)
    assert det.feed(_frame_with_mean_abs(200)) is False  # not below the threshold: voiced
    assert det.run_frames == 0


@pytest.mark.parametrize(("noise_dbov", "silent"), [(-45.0, True), (-39.5, False)])
def test_threshold_200_is_about_minus_42_dbov_for_noise(noise_dbov: float, silent: bool) -> None:
    rms = levels.FULL_SCALE * 10 ** (noise_dbov / 20)
    x = to_int16(np.random.default_rng(0).normal(0, rms, 8000))
    det = SilenceDetector(200, frames_needed=50)
    assert det.feed(x) is silent
    assert det.run_frames == (50 if silent else 0)


def test_run_counts_consecutive_frames_and_resets_on_voice() -> None:
    det = SilenceDetector(threshold=100, frames_needed=3)
    quiet, loud = _frame_with_mean_abs(10), _frame_with_mean_abs(500)
    seq = [quiet, quiet, loud, quiet, quiet, quiet, quiet, loud, quiet, quiet, quiet]
    got = [det.process(AudioFrame(f, 1000 + 160 * i)) for i, f in enumerate(seq)]
    assert got == [False, False, False, False, False, True, False, False, False, False, True]
    assert det.run_frames == 3 and det.silent_samples == 480
    assert det.run_start == 1000 + 160 * 8
    assert det.reached_at == 1000 + 160 * 11  # end of the frame that completed the run


def test_reported_once_per_run() -> None:
    det = SilenceDetector(threshold=100, frames_needed=2)
    results = [det.feed(_frame_with_mean_abs(0)) for _ in range(10)]
    assert results.count(True) == 1 and results[1] is True
    assert det.run_frames == 10


def test_arbitrary_chunks_are_cut_into_20ms_frames() -> None:
    """Same answers as whole frames: a frame is judged only when its 160th sample arrives."""
    rng = np.random.default_rng(3)
    levels_per_frame = rng.choice([20, 400], size=200, p=[0.8, 0.2])
    x = np.concatenate([_frame_with_mean_abs(int(v)) for v in levels_per_frame])
    ref = SilenceDetector(100, frames_needed=4)
    ref_hits = [i for i, f in enumerate(frames(x)) if ref.process(f)]
    det = SilenceDetector(100, frames_needed=4)
    hits_at_sample = []
    pos = 0
    while pos < x.shape[0]:
        n = int(rng.integers(1, 500))
        if det.feed(x[pos:pos + n]):
            hits_at_sample.append(det.reached_at)
        pos += n
    assert ref_hits, "the test signal must contain runs"
    # chunks are < 5 frames and a new run needs a voiced frame plus 4 silent ones: at most one per chunk
    assert hits_at_sample == [(i + 1) * 160 for i in ref_hits]
    assert det.frames_seen == ref.frames_seen == 200
    assert det.reached_at == ref.reached_at


def test_durations_in_frames() -> None:
    assert frames_for_seconds(2.0) == 100
    assert frames_for_seconds(1.01) == 51  # rounded up: never stops early
    assert frames_for_seconds(0.001) == 1
    assert SilenceDetector.for_duration(200, 5).frames_needed == 250


def test_validation() -> None:
    with pytest.raises(ValueError):
        SilenceDetector(0, 1)
    with pytest.raises(ValueError):
        SilenceDetector(200, 0)
