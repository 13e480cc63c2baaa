"""VoiceFocus: streaming noise suppression for 8 kHz call audio, 20 ms frames in and out.

One :class:`VoiceFocus` object per leg. Each call of :meth:`VoiceFocus.process` takes the leg's next
int16[160] frame and returns one int16[160] frame; output sample ``n`` is the enhanced version of input
sample ``n - latency_samples`` (160 samples, 20 ms). Only numpy and scipy are used.

Signal chain, all inside one 40 ms analysis window hopped by 20 ms (sqrt-Hann analysis and synthesis,
so an all-pass gain reconstructs the input exactly, delayed by one frame):

1. Click suppression: bright 2 ms blocks (first-difference energy) that jump far above the recent median
   and die away within a few ms (keyboard clicks, line crackle) are scaled down to the median level
   before the spectrum is taken. Speech onsets do not die away and are left alone.
2. Noise power spectrum: speech-presence-probability noise tracker (unbiased MMSE estimator), plus a
   level tracker for noise that jumps in level as a whole (gated or modulated noise): when the
   posterior SNR is raised but flat across frequency and the block is not impulsive, the estimate is
   rescaled at once instead of waiting for a speech pause.
3. Gain: MMSE log-spectral-amplitude estimator with a decision-directed a-priori SNR, computed
   against the noise estimate x1.3 (mild over-subtraction), floored at -35 dB.

``set_enabled`` may be called between frames: the next frame cross-fades between the enhanced and the
unprocessed (equally delayed) signal, so toggling never clicks. While disabled the object only delays
its input (cheap) and its noise state is frozen; re-enabling resumes from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import exp1, expit

FRAME = 160
NFFT = 2 * FRAME
NBINS = NFFT // 2 + 1
BLOCK = 16  # click detector block, 2 ms
HIST = 4 * FRAME + 1  # input kept: 80 ms (+1 sample for the first difference)
NEB = (NFFT + FRAME) // BLOCK  # click detector blocks: the analysis block and the 20 ms before it

F64 = npt.NDArray[np.float64]
C128 = npt.NDArray[np.complex128]
I16 = npt.NDArray[np.int16]

try:  # numpy >= 2: call pocketfft's ufuncs directly; np.fft's Python wrapper costs 4x the transform
    from numpy.fft import _pocketfft_umath as _pfu  # type: ignore[attr-defined]

    def _rfft(x: F64, out: C128) -> C128:
        r: C128 = _pfu.rfft_n_even(x, 1.0, out=out)
        return r

    def _irfft(x: C128, out: F64) -> F64:
        r: F64 = _pfu.irfft(x, 1.0 / NFFT, out=out)
        return r
except ImportError:  # pragma: no cover - numpy 1.x, whose np.fft is already lean
    def _rfft(x: F64, out: C128) -> C128:
        out[:] = np.fft.rfft(x)
        return out

    def _irfft(x: C128, out: F64) -> F64:
        out[:] = np.fft.irfft(x, NFFT)
        return out


_NO_ONSET = np.zeros(3, dtype=bool)


def _spread2(r: F64) -> float:
    """Variance of ``r``."""
    n = len(r)
    mean = float(r.sum()) / n
    return float(np.dot(r, r)) / n - mean * mean


def _energies(seg: F64) -> F64:
    """First-difference energy of consecutive BLOCKs of ``seg`` (len = k * BLOCK + 1), plus 1."""
    d = (seg[1:] - seg[:-1]).reshape(-1, BLOCK)
    e: F64 = np.einsum("ij,ij->i", d, d)
    e += 1.0
    return e


def _lsa_table() -> tuple[F64, F64]:
    """exp(E1(v)/2), the MMSE-LSA gain factor, tabulated on a log grid (interpolated at run time)."""
    v = np.geomspace(1e-5, 60.0, 100)
    f = np.exp(0.5 * exp1(v))
    return v, f


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
    clk_k: float = 12.0  # onset energy over the 60 ms median and over the 4 ms before it
    clk_decay: float = 8.0  # ... and over the largest block energy 6-10 ms later
    clk_sharp: float = 100.0  # an onset too recent for that: over the 4 ms before it
    clk_hf: float = 1.0  # ... and first-difference energy over this times its energy (0: any)
    clk_keep: float = 2.0  # a click is scaled to this times the median energy
    # gain
    alpha_dd: float = 0.96
    over: float = 1.3  # noise estimate scale for the gain (the tracker runs ~1 dB low; a bit more)
    xi_min_db: float = -35.0
    gain_min_db: float = -35.0


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
        self._spp = np.zeros(NBINS)
        self._X = np.empty(NBINS, dtype=np.complex128)
        self._y = np.empty(NFFT)
        self._lsa_v, self._lsa_f = _lsa_table()
        self._e = np.ones(NEB)
        self._ep = np.full(NEB + 6, -1.0)
        self._po = _NO_ONSET
        xh1 = 10 ** (cfg.xi_h1_db / 10)
        self._spp_k = xh1 / (1 + xh1)
        self._spp_lc = float(np.log(1 + xh1))
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
            return dry.astype(np.int16)
        if self._fresh:
            if self._noise is not None:
                # rebuild the overlap-add tail from the previous block (first frame after bypass)
                prev = h[-NFFT - FRAME:-FRAME]
                self._ola = self._analyse(prev, _energies(h[:-FRAME]))[FRAME:].copy()
            self._e = _energies(h[-NEB * BLOCK - 1:])
            self._fresh = False
        else:
            e = self._e
            e[:-FRAME // BLOCK] = e[FRAME // BLOCK:]
            e[-FRAME // BLOCK:] = _energies(h[-FRAME - 1:])
        y = self._analyse(h[-NFFT:], self._e)
        out = self._ola + y[:FRAME]
        self._ola = y[FRAME:].copy()
        if was != now:
            out = out * (self._fade_in if now else self._fade_out) + dry * (self._fade_out if now else self._fade_in)
        np.rint(out, out=out)
        np.minimum(out, 32767.0, out=out)
        np.maximum(out, -32768.0, out=out)
        return out.astype(np.int16)

    # ------------------------------------------------------------------ DSP
    def _declick(self, buf: F64, e: F64) -> F64:
        """``buf``: the analysis block; ``e``: first-difference energies of the NEB blocks ending with it.

        A click is an onset (2 ms block pair ``clk_k`` x over the 60 ms median and over the 4 ms
        before it) whose energy has died away ``clk_decay`` x 6-10 ms later; an onset too recent to
        know that is taken for a click only if it is ``clk_sharp`` x sharp. The onset block and the
        3 after it (8 ms) are scaled down towards ``clk_keep`` x the median block energy.
        """
        cfg = self.cfg
        nb = NFFT // BLOCK
        k0 = NEB - nb  # first block of buf in e
        ref = float(np.partition(e, NEB // 2)[NEB // 2])
        thr = cfg.clk_k * ref
        po = self._po  # onsets in the last 3 blocks before the newest 20 ms of the previous block
        self._po = _NO_ONSET
        if float(e[k0:].max()) <= thr:
            return buf
        ep = self._ep  # e followed by -1 (not known yet)
        ep[:NEB] = e
        pk = np.maximum(ep[k0:k0 + nb], ep[k0 + 1:k0 + 1 + nb])
        before = np.maximum(e[k0 - 1:k0 - 1 + nb], e[k0 - 2:k0 - 2 + nb])
        fut = np.maximum(np.maximum(ep[k0 + 3:k0 + 3 + nb], ep[k0 + 4:k0 + 4 + nb]), ep[k0 + 5:k0 + 5 + nb])
        onset = (pk > thr) & (before * cfg.clk_k < pk) & np.where(
            fut >= 0, fut * cfg.clk_decay < pk, before * cfg.clk_sharp < pk)
        if cfg.clk_hf and onset.any():
            # clicks are bright: their first-difference energy is comparable to their energy,
            # a voiced onset's (energy below 1 kHz) is a fraction of it
            bl = buf.reshape(nb, BLOCK)
            raw = np.zeros(nb + 1)
            raw[:nb] = np.einsum("ij,ij->i", bl, bl)
            d2 = np.zeros(nb + 1)
            d2[:nb] = e[k0:]
            onset &= (d2[:nb] + d2[1:]) > cfg.clk_hf * (raw[:nb] + raw[1:])
        # onsets in the 20 ms before buf (seen in the previous block) still cover its first blocks
        reg = np.empty(nb + 3, dtype=bool)
        reg[3:] = onset
        reg[:3] = po
        self._po = onset[nb - FRAME // BLOCK - 3:nb - FRAME // BLOCK].copy()
        region = reg[3:] | reg[2:-1] | reg[1:-2] | reg[:-3]
        if not region.any():
            return buf
        eb = e[k0:]
        g = np.where(region, np.minimum(np.sqrt(cfg.clk_keep * ref / eb), 1.0), 1.0)
        out: F64 = buf * np.repeat(g, BLOCK)
        return out

    def _analyse(self, buf: F64, e: F64) -> F64:
        """Enhance one analysis block; returns the windowed synthesis block (NFFT samples).

        Written for speed: every numpy call costs ~1 us of overhead at this size, so the arithmetic
        is folded and done in place where it can be.
        """
        cfg = self.cfg
        X = _rfft(self._declick(buf, e) * self._win, self._X)
        xv = X.view(np.float64).reshape(NBINS, 2)
        P = np.einsum("ij,ij->i", xv, xv)
        P += 1e-3
        lam: F64 = P.copy() if self._noise is None else self._noise
        if self._ninit < cfg.init_frames and float(P.sum()) > NBINS * 1.0:
            # start: the first blocks with any signal are taken as noise (averaged)
            self._ninit += 1
            lam = P.copy() if self._ninit == 1 else lam + (P - lam) / self._ninit
        post = P / lam
        # whole-spectrum level jump of the same noise: log posterior SNR raised but flat across
        # frequency (spread like a periodogram's) and no impulsive block -> rescale at once
        band = post[cfg.lvl_lo:cfg.lvl_hi]
        k = len(band) // 2
        m = float(np.log(np.partition(band, k)[k])) + 0.367  # median of log(Exp(1)) is -0.367
        if m > cfg.lvl_thr and _spread2(np.log(band)) < cfg.lvl_std ** 2:
            bl = buf.reshape(-1, BLOCK)
            eb = np.einsum("ij,ij->i", bl, bl)
            if float(eb.max()) < cfg.lvl_imp * float(eb.mean()):
                g = float(np.exp(cfg.lvl_rate * m))
                lam = lam * g
                post /= g
        # speech presence probability (fixed priors); a bin that looked like speech for ~200 ms is
        # capped at 0.99 so the noise estimate cannot stall; unbiased MMSE noise update
        spp = post * self._spp_k
        spp -= self._spp_lc
        expit(spp, out=spp)  # 1 / (1 + (1 + xi_h1) exp(-post xi_h1 / (1 + xi_h1)))
        sa = self._spp_avg
        sa *= 0.9
        sa += 0.1 * spp
        if float(sa.max()) > 0.99:
            spp = np.where(sa > 0.99, np.minimum(spp, 0.99), spp)
        np.copyto(self._spp, spp)  # kept for gain post-processing (_final_gain)
        # lam += (1 - an) * (1 - spp) * (P - lam)
        d = P - lam
        spp -= 1.0
        spp *= cfg.alpha_noise - 1.0
        d *= spp
        lam = lam + d
        self._noise = lam
        # decision-directed a-priori SNR, MMSE log-spectral amplitude gain
        if cfg.over != 1.0:
            lam = lam * cfg.over
        gamma = P / lam
        np.maximum(P - lam, 0.0, out=d)
        d *= 1.0 - cfg.alpha_dd
        d += self._s_prev  # already times alpha_dd
        xi = d / lam
        np.maximum(xi, self._xi_min, out=xi)
        w = xi / (xi + 1.0)
        gamma *= w  # v = xi gamma / (1 + xi)
        G = np.interp(gamma, self._lsa_v, self._lsa_f)
        G *= w
        np.minimum(G, 1.0, out=G)
        np.maximum(G, self._g_min, out=G)
        X *= self._final_gain(G, P, lam, xi)
        G *= G
        G *= P
        G *= cfg.alpha_dd
        self._s_prev = G
        y = _irfft(X, self._y)
        y *= self._win
        return y

    def _final_gain(self, G: F64, P: F64, lam: F64, xi: F64) -> F64:
        """The gain applied to the spectrum. Here the MMSE-LSA gain ``G`` itself.

        A subclass may return another array (it must not modify ``G``, which feeds the
        decision-directed recursion): ``P`` is the block's power spectrum, ``lam`` the noise estimate
        the gain was computed against (x ``over``), ``xi`` the a-priori SNR, ``self._spp`` the
        speech-presence probability; ``self._noise`` the tracker's noise estimate.
        """
        return G


def enhance(samples: npt.ArrayLike, config: VoiceFocusConfig | None = None) -> I16:
    """Run a whole signal through the streaming suppressor, latency removed (same length out)."""
    return run_offline(VoiceFocus(config), samples)


def run_offline(vf: VoiceFocus, samples: npt.ArrayLike) -> I16:
    """A whole signal through ``vf`` frame by frame (the streaming code a leg runs), latency removed."""
    x = np.asarray(samples, dtype=np.int16)
    lat = vf.latency_samples
    n = len(x)
    nfr = -(-(n + lat) // FRAME)
    xp = np.zeros(nfr * FRAME, dtype=np.int16)
    xp[:n] = x
    out = np.empty(nfr * FRAME, dtype=np.int16)
    for i in range(nfr):
        out[i * FRAME:(i + 1) * FRAME] = vf.process(xp[i * FRAME:(i + 1) * FRAME])
    return out[lat:lat + n]
