"""Signal levels: dBm0, dBov and the SilenceThreshold unit.

Conventions (ITU-T G.711 / G.100.1):
* A sine at +3.14 dBm0 has full-scale peak (32768) in 16-bit linear (A-law's figure; µ-law's is
  3.17, SpanDSP uses 3.14 for both and so do we). So a sine of L dBm0 has peak
  ``32768 · 10^((L − 3.14)/20)``: 0 dBm0 ≈ 22,737 peak, −10 dBm0 ≈ 7,190.
* dBov: 0 dBov is a full-scale square wave, ``dBov = 20·log10(rms / 32768)``; for a sine
  ``dBov = dBm0 − 6.15``.
* SilenceThreshold (SPEC.md §4): the mean absolute value of a 20 ms frame's 16-bit samples,
  the statistic Asterisk and FreeSWITCH use. For noise, rms ≈ 1.2533 · mean|x|.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FULL_SCALE = 32768.0
DBM0_FULL_SCALE_SINE = 3.14  # dBm0 of a full-scale sine
SINE_DBOV_OFFSET = DBM0_FULL_SCALE_SINE + 20 * math.log10(math.sqrt(2))  # dBm0 - dBov for a sine (6.15)
NOISE_RMS_PER_MEAN_ABS = math.sqrt(math.pi / 2)  # 1.2533: rms / mean|x| of Gaussian noise
FLOOR_DB = -120.0


def dbm0_to_peak(dbm0: float) -> float:
    """Peak amplitude (16-bit units) of a sine at ``dbm0``."""
    return FULL_SCALE * 10 ** ((dbm0 - DBM0_FULL_SCALE_SINE) / 20)


def dbm0_to_rms(dbm0: float) -> float:
    """RMS (16-bit units) of any signal whose power is ``dbm0``."""
    return dbm0_to_peak(dbm0) / math.sqrt(2)


def rms_to_dbm0(rms: float) -> float:
    return FLOOR_DB if rms <= 0 else 20 * math.log10(rms * math.sqrt(2) / FULL_SCALE) + DBM0_FULL_SCALE_SINE


def rms(x: npt.ArrayLike) -> float:
    a = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def dbov(x: npt.ArrayLike) -> float:
    """Level of a block in dBov (RMS relative to a full-scale square wave)."""
    r = rms(x)
    return FLOOR_DB if r <= 0 else 20 * math.log10(r / FULL_SCALE)


def dbm0(x: npt.ArrayLike) -> float:
    return rms_to_dbm0(rms(x))


def mean_abs(x: npt.ArrayLike) -> float:
    """The SilenceThreshold statistic: mean |sample| of 16-bit linear samples."""
    a = np.asarray(x)
    return float(np.mean(np.abs(a.astype(np.int32)))) if a.size else 0.0


def threshold_to_dbov(threshold: float) -> float:
    """SPEC.md §4: the level (dBov) that a SilenceThreshold corresponds to for noise-like signals."""
    return 20 * math.log10(NOISE_RMS_PER_MEAN_ABS * threshold / FULL_SCALE)


def dbov_to_threshold(level_dbov: float) -> float:
    """Inverse of :func:`threshold_to_dbov` (used to suggest a threshold from a measured floor)."""
    return FULL_SCALE * 10 ** (level_dbov / 20) / NOISE_RMS_PER_MEAN_ABS
