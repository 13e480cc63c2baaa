"""VoiceFocus: streaming noise suppression for 8 kHz call audio, 20 ms frames in and out.

One :class:`VoiceFocus` object per leg. Each call of :meth:`VoiceFocus.process` takes the leg's next
int16[160] frame and returns one int16[160] frame; output sample ``n`` is the enhanced version of input
sample ``n - latency_samples`` (160 samples, 20 ms). Only numpy and scipy are used.

Signal chain, all inside one 40 ms analysis window hopped by 20 ms (sqrt-Hann analysis and synthesis,
so an all-pass gain reconstructs the input exactly, delayed by one frame):

1. Click suppression: 2 ms blocks of first-difference energy that jump far above the recent median
   and die away within a few ms (keyboard clicks, line crackle) are scaled down to the median level
   before the spectrum is taken. Speech onsets do not die away and are left alone.
2. Noise power spectrum: speech-presence-probability noise tracker (unbiased MMSE estimator), plus a
   level tracker for noise that jumps in level as a whole (gated or modulated noise): when the
   posterior SNR is raised but flat across frequency and the block is not impulsive, the estimate is
   rescaled at once instead of waiting for a speech pause.
3. Gain: MMSE log-spectral-amplitude estimator with a decision-directed a-priori SNR, floored.

``set_enabled`` may be called between frames: the next frame cross-fades between the enhanced and the
unprocessed (equally delayed) signal, so toggling never clicks. While disabled the object only delays
its input (cheap) and its noise state is frozen; re-enabling resumes from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import exp1

FRAME = 160
NFFT = 2 * FRAME
NBINS = NFFT // 2 + 1
BLOCK = 16  # click detector block, 2 ms
HIST = 4 * FRAME + 1  # input kept: 80 ms (+1 sample for the first difference)

F64 = npt.NDArray[np.float64]
I16 = npt.NDArray[np.int16]


@dataclass(frozen=True)
class VoiceFocusConfig:
    """Tuning of the suppressor (defaults tuned on a held-out dev corpus)."""

    # speech presence / noise tracker
    xi_h1_db: float = 15.0  # typical a-priori SNR when speech is present
    alpha_noise: float = 0.64  # noise PSD smoothing per 20 ms frame
    init_frames: int = 4  # blocks averaged into the first noise estimate
    # whole-spectrum noise level jumps
    lvl_lo: int = 6
    lvl_hi: int = 150
    lvl_thr: float = 0.7  # median log posterior SNR (nats) above which a level jump is considered
    lvl_std: float = 1.6  # ... if its spread across frequency is at most this (a periodogram's is 1.28)
    lvl_rate: float = 0.7
    lvl_imp: float = 4.0  # ... and the block is not impulsive (max/mean 2 ms block energy)
    # clicks
    clk_k: float = 8.0  # block energy over the 60 ms median (and over 4 ms before) to be a click
    clk_decay: float = 8.0  # ... and over the largest energy 4-10 ms later
    clk_sharp: float = 100.0  # a block with no future yet: over the minimum of the 6 ms before
    clk_keep: float = 2.0  # a click is scaled to this times the median energy
    # gain
    alpha_dd: float = 0.96
    xi_min_db: float = -25.0
    gain_min_db: float = -25.0


class VoiceFocus:
    """Per-leg streaming suppressor. ``process(int16[160]) -> int16[160]``, 20 ms latency."""

    latency_samples: int = FRAME

    def __init__(self, config: VoiceFocusConfig | None = None, *, enabled: bool = True) -> None:
        self.cfg = cfg = config or VoiceFocusConfig()
        n = np.arange(NFFT)
        self._win = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * n / NFFT))
        fade = np.sin(0.5 * np.pi * (np.arange(FRAME) + 0.5) / FRAME) ** 2
        self._fade_in: F64 = fade
        self._fade_out: F64 = 1.0 - fade
        self._hist = np.zeros(HIST)  # last HIST input samples; the analysis block is the last NFFT
        self._ola = np.zeros(FRAME)
        self._noise: F64 | None = None
        self._spp_avg = np.zeros(NBINS)
        self._s_prev = np.zeros(NBINS)
        self._centers = np.arange(NFFT // BLOCK) * BLOCK + (BLOCK - 1) / 2
        self._pos = np.arange(NFFT, dtype=np.float64)
        xh1 = 10 ** (cfg.xi_h1_db / 10)
        self._spp_k = xh1 / (1 + xh1)
        self._spp_c = 1 + xh1
        self._xi_min = 10 ** (cfg.xi_min_db / 10)
        self._g_min = 10 ** (cfg.gain_min_db / 20)
        self._enabled = enabled
        self._active = enabled  # state of the previous frame
        self._fresh = True  # the OLA tail is not valid (bypassed)
        self._ninit = 0  # blocks with signal averaged into the initial noise estimate

    # ------------------------------------------------------------------ control
    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Switch at the next frame boundary; that frame cross-fades (no click)."""
        self._enabled = bool(enabled)

    # ------------------------------------------------------------------ streaming
    def process(self, frame: npt.ArrayLike) -> I16:
        """Take the next 20 ms input frame, return the next 20 ms output frame (int16[160])."""
        x = np.asarray(frame)
        if x.shape != (FRAME,):
            raise ValueError(f"VoiceFocus needs frames of {FRAME} samples, got shape {x.shape}")
        h = self._hist
        h[:-FRAME] = h[FRAME:]
        h[-FRAME:] = x
        dry = h[-NFFT:-FRAME]  # the input delayed by latency_samples
        was, now = self._active, self._enabled
        self._active = now
        if not was and not now:
            self._fresh = True
            return np.clip(dry, -32768, 32767).astype(np.int16)
        if self._fresh and self._noise is not None:
            # rebuild the overlap-add tail from the previous block (first frame after bypass)
            self._ola = self._analyse(h[-NFFT - FRAME:-FRAME], h[:-FRAME])[FRAME:]
            self._fresh = False
        y = self._analyse(h[-NFFT:], h)
        out = self._ola + y[:FRAME]
        self._ola = y[FRAME:]
        if was != now:
            out = out * (self._fade_in if now else self._fade_out) + dry * (self._fade_out if now else self._fade_in)
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)

    # ------------------------------------------------------------------ DSP
    def _declick(self, buf: F64, h: F64) -> F64:
        """``buf``: the analysis block (NFFT samples); ``h``: NFFT+FRAME+1 samples ending with it."""
        cfg = self.cfg
        nb = NFFT // BLOCK
        d = np.diff(h[-(NFFT + FRAME + 1):]).reshape(-1, BLOCK)
        e = np.einsum("ij,ij->i", d, d) + 1.0
        ref = float(np.median(e))
        k0 = len(e) - nb  # first block of buf in e
        eb = e[k0:]
        thr = cfg.clk_k * ref
        if float(eb.max()) <= thr:
            return buf
        # largest energy 2..5 blocks later (-1: not known yet)
        ep = np.full(len(e) + 6, -1.0)
        ep[:len(e)] = e
        fut = np.maximum(np.maximum(ep[k0 + 2:k0 + 2 + nb], ep[k0 + 3:k0 + 3 + nb]),
                         np.maximum(ep[k0 + 4:k0 + 4 + nb], ep[k0 + 5:k0 + 5 + nb]))
        before = e[k0 - 2:k0 - 2 + nb]
        onset = np.minimum(before, e[k0 - 1:k0 - 1 + nb])
        onset[1:] = np.minimum(onset[1:], onset[:-1])
        click = (eb > thr) & (before * cfg.clk_k < eb) & np.where(
            fut >= 0, fut * cfg.clk_decay < eb, onset * cfg.clk_sharp < eb)
        if not click.any():
            return buf
        g = np.where(click, np.sqrt(cfg.clk_keep * ref / eb), 1.0)
        out: F64 = buf * np.interp(self._pos, self._centers, g)
        return out

    def _analyse(self, buf: F64, h: F64) -> F64:
        """Enhance one analysis block; returns the windowed synthesis block (NFFT samples)."""
        cfg = self.cfg
        X = np.fft.rfft(self._declick(buf, h) * self._win)
        P = X.real * X.real + X.imag * X.imag + 1e-3
        lam: F64 = P.copy() if self._noise is None else self._noise
        if self._ninit < cfg.init_frames and float(P.sum()) > NBINS * 1.0:
            # start: the first blocks with any signal are taken as noise (averaged)
            self._ninit += 1
            lam = P.copy() if self._ninit == 1 else lam + (P - lam) / self._ninit
        post = P / lam
        # whole-spectrum level jump of the same noise: log posterior SNR raised but flat across
        # frequency (spread like a periodogram's) and no impulsive block -> rescale at once
        r = np.log(post[cfg.lvl_lo:cfg.lvl_hi])
        m = float(np.median(r)) + 0.367  # median of log(Exp(1)) is -0.367
        if m > cfg.lvl_thr and float(np.std(r)) < cfg.lvl_std:
            b = buf.reshape(-1, BLOCK)
            eb = np.einsum("ij,ij->i", b, b)
            if float(eb.max()) < cfg.lvl_imp * float(eb.mean()):
                lam = lam * np.exp(cfg.lvl_rate * m)
                post = P / lam
        # speech presence probability (fixed priors) and the unbiased MMSE noise update
        spp = 1.0 / (1.0 + self._spp_c * np.exp(-self._spp_k * post))
        self._spp_avg = sa = 0.9 * self._spp_avg + 0.1 * spp
        spp = np.where(sa > 0.99, np.minimum(spp, 0.99), spp)
        an = cfg.alpha_noise
        lam = an * lam + (1 - an) * ((1 - spp) * P + spp * lam)
        self._noise = lam
        # decision-directed a-priori SNR, MMSE log-spectral amplitude gain
        gamma = P / lam
        xi = cfg.alpha_dd * self._s_prev / lam + (1 - cfg.alpha_dd) * np.maximum(gamma - 1, 0)
        xi = np.maximum(xi, self._xi_min)
        v = xi * gamma / (1 + xi)
        G = np.clip(xi / (1 + xi) * np.exp(0.5 * exp1(v)), self._g_min, 1.0)
        self._s_prev = G * G * P
        y: F64 = np.fft.irfft(G * X, NFFT) * self._win
        return y


def enhance(samples: npt.ArrayLike, config: VoiceFocusConfig | None = None) -> I16:
    """Run a whole signal through the streaming suppressor, latency removed (same length out)."""
    x = np.asarray(samples, dtype=np.int16)
    vf = VoiceFocus(config)
    lat = vf.latency_samples
    n = len(x)
    nfr = -(-(n + lat) // FRAME)
    xp = np.zeros(nfr * FRAME, dtype=np.int16)
    xp[:n] = x
    out = np.empty(nfr * FRAME, dtype=np.int16)
    for i in range(nfr):
        out[i * FRAME:(i + 1) * FRAME] = vf.process(xp[i * FRAME:(i + 1) * FRAME])
    return out[lat:lat + n]
