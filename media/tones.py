"""Tone synthesis primitives: sums of sines at given dBm0 levels, continuous in phase.

Higher-level generators (DTMF, beeps, call-progress cadences, FSK) build on :class:`ToneGenerator`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from media.frame import SAMPLE_RATE, Samples, to_int16
from media.levels import dbm0_to_peak


class ToneGenerator:
    """Streaming sum of sines; phase carries over between calls, so chunks join without clicks."""

    def __init__(self, freqs: Sequence[float], levels_dbm0: Sequence[float] | float,
                 sample_rate: int = SAMPLE_RATE) -> None:
        lv = [levels_dbm0] * len(freqs) if isinstance(levels_dbm0, int | float) else list(levels_dbm0)
        if len(lv) != len(freqs):
            raise ValueError("one level per frequency")
        self.freqs = np.asarray(freqs, dtype=np.float64)
        self.amps = np.asarray([dbm0_to_peak(v) for v in lv], dtype=np.float64)
        self.sample_rate = sample_rate
        self._phase = np.zeros(len(freqs), dtype=np.float64)

    def render(self, n: int) -> npt.NDArray[np.float64]:
        """Next ``n`` samples as float64 (16-bit units), unclipped."""
        if n <= 0 or self.freqs.size == 0:
            return np.zeros(max(n, 0))
        w = 2 * np.pi * self.freqs / self.sample_rate
        ph = self._phase[:, None] + w[:, None] * np.arange(n)[None, :]
        self._phase = (self._phase + w * n) % (2 * np.pi)
        out: npt.NDArray[np.float64] = (self.amps[:, None] * np.sin(ph)).sum(axis=0)
        return out

    def samples(self, n: int) -> Samples:
        return to_int16(self.render(n))


def tone(freqs: Sequence[float], levels_dbm0: Sequence[float] | float, n: int,
         sample_rate: int = SAMPLE_RATE) -> Samples:
    """``n`` samples of a (multi-)tone, starting at phase 0."""
    return ToneGenerator(freqs, levels_dbm0, sample_rate).samples(n)


def silence(n: int) -> Samples:
    return np.zeros(max(n, 0), dtype=np.int16)


class ToneSequence:
    """A queue of segments — tones (sums of sines at dBm0 levels) or silences — read as a stream.

    Each tone segment starts at phase 0 and is exactly its length in samples (durations are counted
    in samples), so bursts are reproducible whatever the read size. ``ramp`` samples of raised-cosine
    fade at both ends of a segment avoid clicks (beeps); DTMF uses none.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.sample_rate = sample_rate
        self._segments: list[tuple[ToneGenerator | None, int, int]] = []  # (generator, n, ramp)
        self._pos = 0  # samples read from the first segment
        self.total_samples = 0
        self._read = 0

    def add(self, freqs: Sequence[float], levels_dbm0: Sequence[float] | float, n: int, ramp: int = 0) -> None:
        """Append ``n`` samples of the tone (no ``freqs``: silence)."""
        if n < 0 or ramp < 0 or 2 * ramp > n:
            raise ValueError("segment length must be >= 0 and at least twice the ramp")
        gen = ToneGenerator(freqs, levels_dbm0, self.sample_rate) if len(freqs) else None
        self._segments.append((gen, n, ramp))
        self.total_samples += n

    @property
    def remaining(self) -> int:
        return self.total_samples - self._read

    def read(self, n: int) -> Samples:
        """Next ``n`` samples; zeros once the queue is exhausted."""
        out = np.zeros(max(n, 0), dtype=np.float64)
        i = 0
        while i < n and self._segments:
            gen, seg_n, ramp = self._segments[0]
            take = min(n - i, seg_n - self._pos)
            if gen is not None and take > 0:
                chunk = gen.render(take)
                if ramp:
                    pos = self._pos + np.arange(take)
                    env = np.minimum(1.0, np.minimum(pos + 0.5, seg_n - pos - 0.5) / ramp)
                    chunk = chunk * (0.5 - 0.5 * np.cos(np.pi * env))
                out[i:i + take] = chunk
            i += take
            self._pos += take
            if self._pos >= seg_n:
                self._segments.pop(0)
                self._pos = 0
        self._read += min(n, i)
        return to_int16(out)


def beep(freq: float = 1000.0, level_dbm0: float = -10.0, n: int = 4000, ramp: int = 40,
         sample_rate: int = SAMPLE_RATE) -> Samples:
    """A beep: ``n`` samples of a sine at ``level_dbm0`` with ``ramp``-sample raised-cosine edges."""
    seq = ToneSequence(sample_rate)
    seq.add([freq], level_dbm0, n, min(ramp, n // 2))
    return seq.read(n)
