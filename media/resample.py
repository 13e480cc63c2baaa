"""Sample-rate conversion with a proper anti-alias filter (polyphase FIR, Kaiser window)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt

from media.frame import Samples, to_int16


def resample(x: npt.NDArray[np.floating] | Samples, rate_in: int, rate_out: int) -> npt.NDArray[np.float64]:
    """Resample a mono signal; returns float64 in the input's units.

    Uses ``scipy.signal.resample_poly``: the FIR low-pass cuts at the lower Nyquist frequency, so
    44.1 kHz or 16 kHz prompts come down to 8 kHz without aliasing.
    """
    a = np.asarray(x, dtype=np.float64)
    if rate_in == rate_out or a.size == 0:
        return a.copy()
    from scipy import signal  # imported here: most processes never resample, and scipy.signal is slow to load

    ratio = Fraction(rate_out, rate_in).limit_denominator(10000)
    y: npt.NDArray[np.float64] = signal.resample_poly(
        a, ratio.numerator, ratio.denominator, window=("kaiser", 8.0))
    return y


def resample_int16(x: Samples, rate_in: int, rate_out: int) -> Samples:
    return to_int16(resample(x, rate_in, rate_out))
