"""Silence detection in the SilenceThreshold unit (SPEC.md §4).

A 20 ms frame (160 samples at 8 kHz) is *silent* when the mean absolute value of its 16-bit linear
samples is below the threshold — the statistic Asterisk and FreeSWITCH use, so threshold 200 ≈
−42 dBov for noise. :class:`SilenceDetector` counts consecutive silent frames, restarts the count on
any voiced frame and reports when the run reaches its target. Everything is counted in samples of
the leg's audio (frames of exactly 160 samples, re-cut from whatever chunks it is fed), never in
wall-clock time.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame
from media.levels import FLOOR_DB, FULL_SCALE

DEFAULT_THRESHOLD = 200.0


def frame_mean_abs(samples: npt.ArrayLike, n: int = FRAME_SAMPLES) -> npt.NDArray[np.float64]:
    """Mean |x| of each whole ``n``-sample frame (a trailing partial frame is left out)."""
    a = np.asarray(samples)
    k = a.shape[0] // n
    out: npt.NDArray[np.float64] = np.abs(a[:k * n].astype(np.int32).reshape(k, n)).mean(axis=1)
    return out


def frame_dbov(samples: npt.ArrayLike, n: int = FRAME_SAMPLES) -> npt.NDArray[np.float64]:
    """Level of each whole ``n``-sample frame in dBov (``FLOOR_DB`` for digital silence)."""
    a = np.asarray(samples, dtype=np.float64)
    k = a.shape[0] // n
    ms = (a[:k * n].reshape(k, n) ** 2).mean(axis=1)
    with np.errstate(divide="ignore"):
        db = 10 * np.log10(ms / FULL_SCALE ** 2)
    out: npt.NDArray[np.float64] = np.maximum(db, FLOOR_DB)
    return out


def frames_for_seconds(seconds: float, n: int = FRAME_SAMPLES, sample_rate: int = SAMPLE_RATE) -> int:
    """Number of ``n``-sample frames that make up ``seconds`` (rounded up: never shorter)."""
    return max(1, math.ceil(round(seconds * sample_rate) / n))


class SilenceDetector:
    """Counts consecutive silent 20 ms frames; :meth:`process` returns True on the frame that
    completes a run of ``frames_needed``.

    Feed :class:`~media.frame.AudioFrame` s with :meth:`process` or arbitrary chunks with
    :meth:`feed`; either way the audio is judged in consecutive 160-sample frames counted from the
    first sample fed (a partial frame waits for the rest). After a run has been reported the count
    goes on (``run_frames`` keeps growing) but is not reported again until a voiced frame has broken
    the run and a new run reaches the target.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, frames_needed: int = 1,
                 frame_samples: int = FRAME_SAMPLES) -> None:
        if not threshold > 0:
            raise ValueError("threshold must be positive")
        if frames_needed < 1:
            raise ValueError("frames_needed must be at least 1")
        self.threshold = float(threshold)
        self.frames_needed = frames_needed
        self.frame_samples = frame_samples
        self._limit = self.threshold * frame_samples  # silent when sum|x| < limit
        self.reset()

    @classmethod
    def for_duration(cls, threshold: float, seconds: float, sample_rate: int = SAMPLE_RATE) -> SilenceDetector:
        """A detector for RecordAudio's SilenceDurationInSeconds at SilenceThreshold."""
        return cls(threshold, frames_for_seconds(seconds, FRAME_SAMPLES, sample_rate))

    def reset(self, pts: int = 0) -> None:
        self._pending = np.zeros(0, dtype=np.int32)
        self._pts = pts  # pts of the next whole frame to judge
        self.run_frames = 0
        self.run_start: int | None = None  # pts where the current silent run began
        self.reached_at: int | None = None  # pts (end of frame) where the last reported run reached the target
        self.frames_seen = 0
        self._reported = False

    @property
    def silent_samples(self) -> int:
        """Length of the current silent run in samples."""
        return self.run_frames * self.frame_samples

    def process(self, frame: AudioFrame) -> bool:
        return self.feed(frame.samples, frame.pts)

    def feed(self, samples: npt.ArrayLike, pts: int | None = None) -> bool:
        """Judge the whole frames this chunk completes; True if a run reached the target in it."""
        a = np.asarray(samples)
        n = self.frame_samples
        if pts is not None and self.frames_seen == 0 and self._pending.shape[0] == 0:
            self._pts = pts
        if self._pending.shape[0] == 0 and a.shape[0] == n:  # the usual case: one whole frame
            return self._judge(int(np.abs(a, dtype=np.int32).sum()) < self._limit)
        buf = np.concatenate((self._pending, a.astype(np.int32)))
        k = buf.shape[0] // n
        self._pending = buf[k * n:]
        if k == 0:
            return False
        sums = np.abs(buf[:k * n]).reshape(k, n).sum(axis=1)
        hit = False
        for silent in (sums < self._limit).tolist():
            hit = self._judge(silent) or hit
        return hit

    def _judge(self, silent: bool) -> bool:
        start = self._pts
        self._pts += self.frame_samples
        self.frames_seen += 1
        if not silent:
            self.run_frames = 0
            self.run_start = None
            self._reported = False
            return False
        if self.run_frames == 0:
            self.run_start = start
        self.run_frames += 1
        if self.run_frames >= self.frames_needed and not self._reported:
            self._reported = True
            self.reached_at = self._pts
            return True
        return False
