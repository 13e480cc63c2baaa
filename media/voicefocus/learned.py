"""VoiceFocus "learned" backend: the MMSE-LSA suppressor's gain refined by a small GRU (numpy inference).

The builtin suppressor (:mod:`media.voicefocus.core`) runs unchanged: click suppression, noise tracking,
decision-directed a-priori SNR and its MMSE-LSA gain ``G`` (which still drives the decision-directed
recursion, so the network never feeds back into the features). Per 20 ms block the network sees, in
``NB`` triangular bands: the log power of the block, of the noise estimate and of the a-priori speech
estimate, the mean speech-presence probability, the mean log LSA gain, and the previous block's log
power (no look-ahead: latency stays 20 ms). One GRU layer keeps context across blocks; a linear layer
maps its state to four coefficients per band, interpolated to every FFT bin, that form the bin's log
gain from the bin's own evidence::

    z = a * log G + b * log(P / noise) + c * spp + d
    gain = max(sigmoid(z), LSA_CUT * G, g_min)

so the per-bin resolution of the LSA gain (harmonics, hum lines) is kept while the network decides, per
band and moment, how far to trust it. The network may cut at most 12 dB more than the LSA gain: without
that bound it removes parts of the talker in loud babble (STOI -0.07 at 0 dB), with it babble STOI stays
within the bound while most of the PESQ gain remains. Weights are trained offline (``tools/train_voicefocus_net.py``,
torch) and shipped as ``voicefocus_net.npz`` next to this module; inference is plain numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit

from media.voicefocus.core import NBINS, VoiceFocus, VoiceFocusConfig

F64 = npt.NDArray[np.float64]
I16 = npt.NDArray[np.int16]

WEIGHTS = Path(__file__).with_name("voicefocus_net.npz")
NB = 24  # bands
NFEAT = 6 * NB  # network input size
NCOEF = 4  # per-band coefficients of the per-bin log gain
LSA_CUT = 0.25  # the gain is at least this times the MMSE-LSA gain (-12 dB)


class WeightsError(ValueError):
    """The weights file is missing, unreadable or does not fit the network."""


def band_matrix(nb: int = NB, nbins: int = NBINS) -> F64:
    """Triangular band weights ``W[nb, nbins]`` on a mel-like scale; each bin's weights sum to 1."""
    mel_top = 2595.0 * np.log10(1.0 + 4000.0 / 700.0)
    hz = 700.0 * (10 ** (np.linspace(0.0, mel_top, nb) / 2595.0) - 1.0)
    centres = hz / 4000.0 * (nbins - 1)
    # keep low bands at least 2 bins apart
    for i in range(1, nb):
        centres[i] = max(centres[i], centres[i - 1] + 2.0)
    centres *= (nbins - 1) / centres[-1]
    k = np.arange(nbins, dtype=np.float64)
    w = np.zeros((nb, nbins))
    for b in range(nb):
        if b > 0:
            lo = centres[b - 1]
            m = (k >= lo) & (k <= centres[b])
            w[b, m] = (k[m] - lo) / (centres[b] - lo)
        if b < nb - 1:
            hi = centres[b + 1]
            m = (k >= centres[b]) & (k <= hi)
            w[b, m] = (hi - k[m]) / (hi - centres[b])
    w[0, 0] = 1.0
    w /= w.sum(axis=0, keepdims=True)
    return w


# shapes of every array in the weights file (H: GRU size, read from w_hh)
def _expected(h: int) -> dict[str, tuple[int, ...]]:
    return {
        "w_ih": (3 * h, NFEAT), "b_ih": (3 * h,), "w_hh": (3 * h, h), "b_hh": (3 * h,),
        "w_out": (NCOEF * NB, h), "b_out": (NCOEF * NB,), "feat_mean": (NFEAT,), "feat_std": (NFEAT,),
    }


@lru_cache(maxsize=4)
def load_weights(path: Path = WEIGHTS) -> dict[str, F64]:
    """Load and check the network weights (``WeightsError`` with the reason when they do not fit)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrs = {k: np.asarray(z[k], dtype=np.float64) for k in z.files}
    except (OSError, ValueError) as e:
        raise WeightsError(f"cannot read VoiceFocus network weights {path}: {e}") from e
    if "w_hh" not in arrs or arrs["w_hh"].ndim != 2:
        raise WeightsError(f"{path}: no 2-D 'w_hh' array (GRU recurrent weights)")
    h = arrs["w_hh"].shape[1]
    for name, shape in _expected(h).items():
        if name not in arrs:
            raise WeightsError(f"{path}: missing array {name!r}")
        if arrs[name].shape != shape:
            raise WeightsError(f"{path}: {name!r} has shape {arrs[name].shape}, expected {shape} "
                               f"(bands={NB}, hidden={h})")
        if not np.all(np.isfinite(arrs[name])):
            raise WeightsError(f"{path}: {name!r} holds NaN or inf")
    if np.any(arrs["feat_std"] <= 0):
        raise WeightsError(f"{path}: 'feat_std' must be positive")
    return arrs


@dataclass(frozen=True)
class _Network:
    """The weights as inference uses them, shared read-only by every leg."""

    hidden: int
    w_ih: npt.NDArray[np.float32]  # input normalisation and bias folded in (inputs end with a constant 1)
    w_hh: F64  # bias folded in (the state ends with a constant 1)
    w_out: F64


def _readonly(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a.flags.writeable = False
    return a


@lru_cache(maxsize=4)
def _network(path: Path) -> _Network:
    """Load the weights once per process and fold them for inference (not once per leg)."""
    wts = load_weights(path)
    w_ih = wts["w_ih"] / wts["feat_std"]
    # the input product in float32: its features are logs of powers, well within its precision
    return _Network(
        hidden=wts["w_hh"].shape[1],
        w_ih=_readonly(np.ascontiguousarray(np.c_[w_ih, wts["b_ih"] - w_ih @ wts["feat_mean"]], dtype=np.float32)),
        w_hh=_readonly(np.ascontiguousarray(np.c_[wts["w_hh"], wts["b_hh"]])),
        w_out=_readonly(np.ascontiguousarray(np.c_[wts["w_out"], wts["b_out"]])))


@lru_cache(maxsize=1)
def _bands() -> tuple[F64, F64]:
    bw = band_matrix()
    return _readonly(bw), _readonly(np.ascontiguousarray(bw.T))


class LearnedVoiceFocus(VoiceFocus):
    """:class:`VoiceFocus` whose gain is refined by the GRU. Same streaming contract (20 ms latency)."""

    def __init__(self, config: VoiceFocusConfig | None = None, *, enabled: bool = True,
                 weights: Path | None = None) -> None:
        super().__init__(config, enabled=enabled)
        net = _network(weights or WEIGHTS)
        self.hidden = net.hidden
        self._w_ih, self._w_hh, self._w_out = net.w_ih, net.w_hh, net.w_out
        self._init_features()

    def _init_features(self) -> None:
        self._bw, self._bt = _bands()  # NB x NBINS band -> bin interpolation; NBINS x NB band sums
        self._feat = np.zeros(NFEAT + 1, dtype=np.float32)  # network input, then a constant 1 (bias)
        self._feat[NFEAT] = 1.0
        self._hb = np.zeros(self.hidden + 1)  # GRU state, then a constant 1 (bias)
        self._hb[self.hidden] = 1.0
        self._ev = np.empty((NCOEF, NBINS))  # per-bin evidence: log G, log post, spp, 1
        self._ev[3] = 1.0
        self._stack = np.empty((5, NBINS))

    def reset(self) -> None:
        """Forget all state (noise estimate, GRU state): as freshly constructed, same weights."""
        VoiceFocus.__init__(self, self.cfg, enabled=self.enabled)
        self._init_features()

    def _features(self, G: F64, P: F64, lam: F64, xi: F64) -> None:
        """Fill ``self._feat`` (network input) and ``self._ev`` (per-bin evidence) for this block."""
        st = self._stack
        noise = self._noise if self._noise is not None else lam
        st[0] = P
        st[1] = noise
        np.multiply(xi, lam, out=st[2])
        st[2] += 1e-3
        st[3] = self._spp
        ev = self._ev
        np.log(G, out=ev[0])
        st[4] = ev[0]
        bands = st @ self._bt  # 5 x NB
        f = self._feat
        f[5 * NB:NFEAT] = f[:NB]  # previous block's log band power
        np.log(bands[:3], out=bands[:3])
        f[:5 * NB] = bands.ravel()
        np.log(P / lam, out=ev[1])
        ev[2] = self._spp

    def _final_gain(self, G: F64, P: F64, lam: F64, xi: F64) -> F64:
        self._features(G, P, lam, xi)
        # GRU (PyTorch gate layout r, z, n); biases folded in: _feat and _hb end with a constant 1
        hb = self._hb
        n = self.hidden
        hh = hb[:n]
        gi = self._w_ih @ self._feat
        gh = self._w_hh @ hb
        rz = gi[:2 * n]
        rz += gh[:2 * n]
        expit(rz, out=rz)
        cand = gh[2 * n:]
        cand *= rz[:n]
        cand += gi[2 * n:]
        np.tanh(cand, out=cand)
        hh -= cand  # h = (1 - z) cand + z h = cand + z (h - cand)
        hh *= rz[n:]
        hh += cand
        # per-band coefficients interpolated to the bins, per-bin logit
        z = np.einsum("ij,ij->j", (self._w_out @ hb).reshape(NCOEF, NB) @ self._bw, self._ev)
        expit(z, out=z)  # exp(-softplus(-z))
        # never more than LSA_CUT below the LSA gain (nor below its floor): where the network cannot
        # tell the talker from the noise (babble at 0 dB) it must not delete what LSA keeps
        np.maximum(z, G * LSA_CUT, out=z)
        np.maximum(z, self._g_min, out=z)
        out: F64 = z
        return out
