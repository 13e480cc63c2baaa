"""Audio frames: the unit that flows through every call.

A frame is 20 ms of mono 16-bit linear audio that carries its own time. ``pts`` counts samples since
the leg started, so durations (RecordAudio's DurationInSeconds, silence timers, DTMF start/end) are
measured in samples of the leg's audio and never in wall-clock time; tests can therefore push audio
faster than real time and get the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 160

Samples = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """``samples``: int16 mono; ``pts``: index of the first sample since leg start."""

    samples: Samples
    pts: int
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if self.samples.dtype != np.int16 or self.samples.ndim != 1:
            raise ValueError(f"AudioFrame needs a 1-D int16 array, got {self.samples.dtype} {self.samples.shape}")
        if self.sample_rate <= 0:
            raise ValueError("sample_rate must be positive")

    @property
    def duration_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def end_pts(self) -> int:
        """pts of the first sample after this frame."""
        return self.pts + self.duration_samples

    @property
    def time(self) -> float:
        """Start of the frame in seconds since leg start."""
        return self.pts / self.sample_rate

    @classmethod
    def silence(cls, pts: int, n: int = FRAME_SAMPLES, sample_rate: int = SAMPLE_RATE) -> AudioFrame:
        return cls(np.zeros(n, dtype=np.int16), pts, sample_rate)


def seconds_to_samples(seconds: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Round a duration to whole samples (durations are always counted in samples)."""
    return round(seconds * sample_rate)


def frames(samples: Samples, start_pts: int = 0, n: int = FRAME_SAMPLES,
           sample_rate: int = SAMPLE_RATE, pad: bool = True) -> list[AudioFrame]:
    """Cut a signal into consecutive frames of ``n`` samples (the last one zero-padded if ``pad``)."""
    out: list[AudioFrame] = []
    total = len(samples)
    for i in range(0, total, n):
        chunk = samples[i:i + n]
        if len(chunk) < n:
            if not pad:
                break
            chunk = np.concatenate([chunk, np.zeros(n - len(chunk), dtype=np.int16)])
        out.append(AudioFrame(np.ascontiguousarray(chunk, dtype=np.int16), start_pts + i, sample_rate))
    return out


def to_int16(x: npt.ArrayLike) -> Samples:
    """Round and saturate float samples (in int16 units) to int16."""
    a = np.asarray(x, dtype=np.float64)
    return np.clip(np.rint(a), -32768, 32767).astype(np.int16)
