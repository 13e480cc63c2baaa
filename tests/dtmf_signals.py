"""Helpers for the DTMF tests: burst trains through G.711, fed to the detector in 160-sample frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media import g711
from media.dtmf import KEYPAD, DtmfDetector, DtmfEvent, DtmfParams, dtmf_tone
from media.frame import FRAME_SAMPLES, Samples, frames, to_int16
from media.levels import dbm0_to_rms
from media.tones import ToneGenerator

LAWS = ("ulaw", "alaw")


@dataclass
class Train:
    """A signal and where its bursts are: (digit, start, end) in samples."""

    samples: Samples
    bursts: list[tuple[str, int, int]]

    @property
    def digits(self) -> str:
        return "".join(d for d, _, _ in self.bursts)


def train(digits: Sequence[str], on: int, off: int = 400, stagger: int = 7, **tone: float) -> Train:
    """Bursts of ``on`` samples separated by at least ``off`` samples of silence.

    Each gap is ``off + (i·stagger mod 51)`` samples long, so successive bursts start at every
    alignment against the detector's 51-sample window grid (51 bursts cover them all).
    """
    parts: list[npt.NDArray[np.int16]] = []
    bursts = []
    pos = 0
    for i, d in enumerate(digits):
        gap = off + (i * stagger) % 51
        parts.append(np.zeros(gap, dtype=np.int16))
        pos += gap
        parts.append(dtmf_tone(d, on, **tone))
        bursts.append((d, pos, pos + on))
        pos += on
    parts.append(np.zeros(off + 2 * FRAME_SAMPLES, dtype=np.int16))
    return Train(np.concatenate(parts), bursts)


def all_digits(n: int) -> list[str]:
    """``n`` digits cycling through the whole keypad."""
    return [KEYPAD[i % 16] for i in range(n)]


def line(x: npt.ArrayLike, law: str) -> Samples:
    """What a G.711 channel does to linear audio (saturating to 16 bits first)."""
    s = to_int16(x)
    return g711.ulaw_roundtrip(s) if law == "ulaw" else g711.alaw_roundtrip(s)


def add_noise(x: npt.ArrayLike, noise_dbm0: float, seed: int = 1) -> npt.NDArray[np.float64]:
    """White Gaussian noise of total power ``noise_dbm0`` over the whole 0-4 kHz band."""
    a = np.asarray(x, dtype=np.float64)
    return a + np.random.default_rng(seed).normal(0.0, dbm0_to_rms(noise_dbm0), a.shape)


def add_tones(x: npt.ArrayLike, freqs: Sequence[float], level_dbm0: float) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    return a + ToneGenerator(freqs, level_dbm0).render(a.shape[0])


def detect_frames(x: Samples, params: DtmfParams | None = None) -> list[DtmfEvent]:
    """Run the detector the way a leg does: AudioFrames of 160 samples, then flush."""
    det = DtmfDetector(params)
    out: list[DtmfEvent] = []
    for f in frames(x):
        out += det.process(f)
    return out + det.flush()


def match(events: Sequence[DtmfEvent], t: Train, tolerance: int = 160) -> tuple[int, int]:
    """(bursts reported by exactly one event with the right digit, all other events).

    An event belongs to a burst when it overlaps it (widened by ``tolerance`` samples).
    """
    owner: list[int | None] = []
    j = 0
    for e in events:  # events and bursts are both in time order
        while j < len(t.bursts) and t.bursts[j][2] + tolerance <= e.start:
            j += 1
        k = j if j < len(t.bursts) and t.bursts[j][1] - tolerance < e.end else None
        owner.append(k if k is not None and t.bursts[k][0] == e.digit else None)
    counts = [0] * len(t.bursts)
    for k in owner:
        if k is not None:
            counts[k] += 1
    hits = counts.count(1)
    return hits, len(events) - hits
