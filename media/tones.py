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
