"""Line audio an emulated exchange and far-end caller put on an analog line (8 kHz).

Independent of the detectors in ``media/`` on purpose: these generators follow the published tone
plans (HARDWARE.md §3.3, Asterisk ``indications.conf``) and DTMF figures (§6) directly, so a detector
that only agrees with itself is caught.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media.frame import SAMPLE_RATE, Samples, to_int16
from media.levels import dbm0_to_rms
from media.tones import ToneGenerator


@dataclass(frozen=True)
class ToneSpec:
    """Frequencies at levels (dBm0 each), switched by a cadence of on/off seconds (empty: continuous)."""

    freqs: tuple[float, ...]
    levels_dbm0: tuple[float, ...]
    cadence: tuple[float, ...] = ()


# Call-progress tones per country (HARDWARE.md §3.3; UK levels from the ZyXEL BT profile).
TONE_PLANS: dict[str, dict[str, ToneSpec]] = {
    "us": {
        "dial": ToneSpec((350.0, 440.0), (-13.0, -13.0)),
        "busy": ToneSpec((480.0, 620.0), (-24.0, -24.0), (0.5, 0.5)),
        "reorder": ToneSpec((480.0, 620.0), (-24.0, -24.0), (0.25, 0.25)),
        "ringback": ToneSpec((440.0, 480.0), (-19.0, -19.0), (2.0, 4.0)),
    },
    "uk": {
        "dial": ToneSpec((350.0, 440.0), (-22.0, -18.0)),
        "busy": ToneSpec((400.0,), (-18.0,), (0.375, 0.375)),
        "reorder": ToneSpec((400.0,), (-18.0,), (0.4, 0.35, 0.225, 0.525)),
        "ringback": ToneSpec((400.0, 450.0), (-19.0, -19.0), (0.4, 0.2, 0.4, 2.0)),
        "nu": ToneSpec((400.0,), (-18.0,), ()),
    },
    "eu": {
        "dial": ToneSpec((425.0,), (-13.0,)),
        "busy": ToneSpec((425.0,), (-18.0,), (0.5, 0.5)),
        "reorder": ToneSpec((425.0,), (-18.0,), (0.25, 0.25)),
        "ringback": ToneSpec((425.0,), (-19.0,), (1.0, 4.0)),
    },
}

RING_CADENCES: dict[str, tuple[float, ...]] = {
    "us": (2.0, 4.0),
    "uk": (0.4, 0.2, 0.4, 2.0),
    "de": (1.0, 4.0),
    "fr": (1.5, 3.5),
}

DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")

# ETSI DT-AS (dual-tone alerting signal before caller ID): 2130 + 2750 Hz, 88-110 ms
DTAS = ToneSpec((2130.0, 2750.0), (-20.0, -20.0))


class CadencedTone:
    """Streaming tone switched on and off by a cadence; phase runs on through the gaps."""

    def __init__(self, spec: ToneSpec, sample_rate: int = SAMPLE_RATE) -> None:
        self.spec = spec
        self._gen = ToneGenerator(spec.freqs, spec.levels_dbm0, sample_rate)
        self._edges = np.cumsum([round(d * sample_rate) for d in spec.cadence]) if spec.cadence else None
        self._pos = 0

    def render(self, n: int) -> npt.NDArray[np.float64]:
        x = self._gen.render(n)
        if self._edges is not None and self._edges[-1] > 0:
            period = int(self._edges[-1])
            pos = (self._pos + np.arange(n)) % period
            segment = np.searchsorted(self._edges, pos, side="right")
            x = np.where(segment % 2 == 0, x, 0.0)
        self._pos += n
        return x


def tone_samples(spec: ToneSpec, seconds: float) -> Samples:
    return to_int16(CadencedTone(spec).render(round(seconds * SAMPLE_RATE)))


def dtmf(digits: str, on_ms: int = 80, off_ms: int = 80, level_dbm0: float = -10.0, twist_db: float = 0.0,
         freq_offset_pct: float = 0.0) -> Samples:
    """DTMF digits; ``level_dbm0`` is the low-group tone, the high group is ``twist_db`` above it
    (positive twist: high group stronger). Each digit is ``on_ms`` of tone then ``off_ms`` of silence."""
    out: list[npt.NDArray[np.float64]] = []
    k = 1 + freq_offset_pct / 100
    for d in digits.upper():
        row = next((i for i, keys in enumerate(DTMF_KEYS) if d in keys), None)
        if row is None:
            raise ValueError(f"not a DTMF digit: {d!r}")
        col = DTMF_KEYS[row].index(d)
        gen = ToneGenerator((DTMF_LOW[row] * k, DTMF_HIGH[col] * k), (level_dbm0, level_dbm0 + twist_db))
        out.append(gen.render(round(on_ms * 8)))
        out.append(np.zeros(round(off_ms * 8)))
    return to_int16(np.concatenate(out)) if out else np.zeros(0, dtype=np.int16)


@dataclass(frozen=True)
class Hum:
    """Mains hum on an analog line: the mains frequency and its harmonics, ``levels_dbm0[k]`` being the
    level of harmonic ``k + 1`` (``None``: absent). A ground loop typically gives 50/60 Hz plus odd
    harmonics; what a telephone band-pass leaves of it is mostly the harmonics above 300 Hz."""

    mains_hz: float = 50.0
    levels_dbm0: tuple[float | None, ...] = (-50.0,)

    @property
    def components(self) -> list[tuple[float, float]]:
        """(frequency, level dBm0) of each harmonic present."""
        return [((k + 1) * self.mains_hz, lv) for k, lv in enumerate(self.levels_dbm0) if lv is not None]

    def generator(self, sample_rate: int = SAMPLE_RATE) -> ToneGenerator:
        comps = self.components
        return ToneGenerator([f for f, _ in comps], [lv for _, lv in comps], sample_rate)


def noise(n: int, level_dbm0: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """White Gaussian noise at ``level_dbm0`` (power)."""
    out: npt.NDArray[np.float64] = rng.standard_normal(n) * dbm0_to_rms(level_dbm0)
    return out


def mix(parts: Sequence[npt.NDArray[np.float64]], n: int) -> npt.NDArray[np.float64]:
    out = np.zeros(n)
    for p in parts:
        out[:len(p)] += p[:n]
    return out
