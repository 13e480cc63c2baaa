"""Streaming rational resampler (polyphase FIR) for audio that arrives in blocks.

:func:`media.resample.resample` converts whole signals; a sound card running at 48 kHz (or 44.1 kHz)
delivers 20 ms blocks forever, so the FXO driver needs a filter that keeps its state between blocks.
:class:`StreamResampler` uses the same Kaiser-window low-pass as ``scipy.signal.resample_poly``
(cut-off at the lower Nyquist frequency), applied causally: the output of any block split is
identical to the output of the whole signal, delayed by :attr:`StreamResampler.delay` output samples.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt
from scipy import signal

from media.frame import Samples, to_int16


class StreamResampler:
    def __init__(self, rate_in: int, rate_out: int, kaiser_beta: float = 8.0) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError("rates must be positive")
        ratio = Fraction(rate_out, rate_in)
        self.rate_in, self.rate_out = rate_in, rate_out
        self.up, self.down = ratio.numerator, ratio.denominator
        self.passthrough = self.up == self.down == 1
        max_rate = max(self.up, self.down)
        half_len = 0 if self.passthrough else 10 * max_rate
        h = (np.ones(1) if self.passthrough
             else signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", kaiser_beta)) * self.up)
        self.taps = -(-len(h) // self.up)  # per phase
        padded = np.zeros(self.taps * self.up)
        padded[:len(h)] = h
        # phase p, tap j -> h[p + j*up]
        self._bank: npt.NDArray[np.float64] = padded.reshape(self.taps, self.up).T.copy()
        self._history = np.zeros(self.taps - 1)
        self._inputs = 0  # input samples consumed so far
        self._outputs = 0  # output samples produced so far
        self.delay = half_len / self.down  # in output samples (group delay of the causal filter)

    def process(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Next block in (any length, 16-bit units), the output samples it completes out (float64)."""
        block = np.asarray(x, dtype=np.float64).ravel()
        if self.passthrough:
            return block.copy()
        if block.size == 0:
            return np.zeros(0)
        base = self._inputs - (self.taps - 1)  # input index of buf[0]
        buf = np.concatenate([self._history, block])
        self._inputs += block.size
        # outputs m with floor(m*down/up) <= last input index
        last = self._inputs - 1
        m_end = (last * self.up + self.up - 1) // self.down + 1
        m = np.arange(self._outputs, m_end, dtype=np.int64)
        self._outputs = int(m_end)
        t = m * self.down
        idx = t // self.up - base  # position in buf of the newest input for each output
        phase = t % self.up
        gather = idx[:, None] - np.arange(self.taps)[None, :]
        y: npt.NDArray[np.float64] = np.einsum("ij,ij->i", self._bank[phase], buf[gather])
        self._history = buf[len(buf) - (self.taps - 1):] if self.taps > 1 else np.zeros(0)
        return y

    def process_int16(self, x: Samples) -> Samples:
        return to_int16(self.process(x))

    def reset(self) -> None:
        self._history[:] = 0.0
        self._inputs = self._outputs = 0
