"""DTMF: a streaming Goertzel-bank detector and the generators that go with it.

Detector
--------
The design is the one SpanDSP and Asterisk use — single-bin DFTs (Goertzel filters) at the eight
DTMF frequencies over 102-sample blocks, then per-block tests and a hit/miss state machine — with
additions that make the ITU-T Q.24 (North American column) figures hold at every alignment of the
tone against the block grid:

* **Half-block hop.** 102-sample windows are evaluated every 51 samples. A window *passes* when
  it holds a valid tone pair for most of its length (the energy-ratio test does that: a tone that
  fills a fraction *p* of the window scores about *p* of its energy), so the number of
  consecutive passing windows measures the tone's duration to within a few milliseconds: a 40 ms
  tone always gives at least 4, a 23 ms tone at most 3 (``hits_to_begin=4``). A 10 ms drop-out
  costs at most 4 windows and is bridged; a 40 ms pause costs at least 6 and ends the digit
  (``misses_to_end=6``).
* **Frequency guard bins.** Each DTMF frequency *f* has two more bins at *f*·(1 ± 5 %); the
  centre bin must be the strongest of the three, which puts the accept/reject boundary at about
  ±2.5 %: Q.24 wants ±1.5 % accepted and ±3.5 % rejected, which a 102-sample Goertzel alone
  cannot resolve in the low group (its main lobe is ±78 Hz wide, ±11 % at 697 Hz).
* **Projection instead of filters.** DC (and, with ``dialtone_tolerant``, 350 Hz and 440 Hz
  dial tone) is projected out of each window exactly: the bin vectors are made orthogonal to
  those components and the window energy is taken from what remains. Row bins are also made
  orthogonal to the column tones and column bins to the row tones, so at 8 dB twist the strong
  tone's side lobes do not move the weak tone's reading. There is no filter state, so chunking
  never changes a result.

Per window, with *P* the power in a bin (a sine of amplitude *A* centred on the bin reads
*A*²/2) and *E* the window's mean power after projection:

1. the strongest row and strongest column bins are each above ``threshold_dbm0``;
2. energy ratio: row + column hold at least ``energy_ratio_db`` of *E* (two pure tones and
   nothing else);
3. twist: the column (high) tone at most ``reverse_twist_db`` above the row tone, at most
   ``normal_twist_db`` below it;
4. relative peak: every other row (column) at least ``relative_peak_db`` below the best one;
5. frequency: each centre bin at least as strong as its two guard bins;
6. harmonics (talk-off): the second harmonic of each tone at least ``harmonic_db`` below it
   (DTMF has none; voiced speech and instruments do). The rows' second harmonics (1394–1882 Hz)
   lie among the column frequencies, so they are measured with the detected column tone projected
   out. For the five pairs where 2·row is within 8 % of the column (digits 2 3 6 B C) that is not
   possible without rejecting real digits with a 1.5 % frequency error, so there the row's harmonic
   is only caught (by the column's upper guard bin) once it is about as strong as the tones.

Cost: one matrix product and a few vector operations per fed chunk decide that no window holds
a candidate (a window's 8 bins together cannot reach the energy ratio); only windows past that
gate get the guard and harmonic bins and the scalar tests.

Measured limits with the defaults (µ-law, bursts at every alignment, built the way
tests/unit/test_dtmf_q24.py builds its signals): frequency error of ±2 % always accepted, ±2.8 %
and more always rejected (the boundary is at ±2.2-2.5 %); twist accepted to about −9.5/+5.5 dB;
tones of 34 ms and longer always accepted, 24 ms and shorter always rejected (25 ms: 1 %, 30 ms:
76 %); level down to −39 dBm0 per tone; interruptions up to 25 ms bridged, 33 ms and longer end
the digit. Start and end are reported within ±4 ms.

Generators
----------
:func:`dtmf_tone` makes one burst with level, twist, frequency offsets and duration;
:class:`DtmfSender` streams a SendDigits string (``0-9 * # A-D``, ``,`` = 500 ms pause).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media.frame import SAMPLE_RATE, AudioFrame, Samples
from media.levels import dbm0_to_peak, rms_to_dbm0
from media.tones import ToneSequence

log = logging.getLogger(__name__)

ROW_FREQS: tuple[float, ...] = (697.0, 770.0, 852.0, 941.0)
COL_FREQS: tuple[float, ...] = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = "123A456B789C*0#D"  # row-major: KEYPAD[4 * row + col]
DIGITS = frozenset(KEYPAD)
DTMF_FREQS: dict[str, tuple[float, float]] = {
    KEYPAD[4 * r + c]: (ROW_FREQS[r], COL_FREQS[c]) for r in range(4) for c in range(4)
}

BLOCK = 102  # samples per Goertzel window (12.75 ms), as SpanDSP and Asterisk
HOP = 51  # windows start every half block
DIALTONE_FREQS = (350.0, 440.0)


@dataclass(frozen=True)
class DtmfParams:
    """Detector thresholds (defaults meet Q.24's North American figures; see the module doc)."""

    threshold_dbm0: float = -40.0
    normal_twist_db: float = 9.5
    reverse_twist_db: float = 5.5
    relative_peak_db: float = 8.0
    energy_ratio_db: float = -1.3
    guard_offset: float = 0.05
    harmonic_db: float = 10.0
    dialtone_tolerant: bool = True
    hits_to_begin: int = 4
    misses_to_end: int = 6

    def __post_init__(self) -> None:
        if self.hits_to_begin < 1 or self.misses_to_end < 1:
            raise ValueError("hits_to_begin and misses_to_end must be at least 1")
        if not 0 < self.guard_offset < 0.2:
            raise ValueError("guard_offset must be between 0 and 0.2")


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One key press: ``start``/``end`` are pts (samples since leg start), ``end`` exclusive."""

    digit: str
    start: int
    end: int
    level_dbm0: float = 0.0  # mean level per tone
    twist_db: float = 0.0  # high group minus low group
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def start_seconds(self) -> float:
        return self.start / self.sample_rate

    @property
    def end_seconds(self) -> float:
        return self.end / self.sample_rate


def _db(x: float) -> float:
    return 10 ** (x / 10)


def _cos_sin(freqs: Iterable[float], n: int, fs: int) -> npt.NDArray[np.float64]:
    """(n, 2·len(freqs)) matrix: cos, sin pairs."""
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2
    cols: list[npt.NDArray[np.float64]] = []
    for f in freqs:
        w = 2 * np.pi * f / fs
        cols += [np.cos(w * t), np.sin(w * t)]
    return np.stack(cols, axis=1)


def _orthonormal(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    q, _ = np.linalg.qr(m)
    return np.asarray(q, dtype=np.float64)


def _project_out(b: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = b - q @ (q.T @ b)
    return out


def _gains(basis: npt.NDArray[np.float64], freqs: Iterable[float], fs: int) -> npt.NDArray[np.float64]:
    """Per-bin factor so that a unit sine centred on the bin (any phase) reads 1/2."""
    tones = _cos_sin(freqs, basis.shape[0], fs)
    g = []
    for k in range(basis.shape[1] // 2):
        b = basis[:, 2 * k:2 * k + 2]
        resp = (tones[:, 2 * k:2 * k + 2].T @ b) ** 2  # 2 phases × 2 outputs
        g.append(0.5 / (0.5 * float(resp.sum())))
    return np.asarray(g)


@dataclass(frozen=True)
class _Tables:
    fast: npt.NDArray[np.float64]
    pair_sum: npt.NDArray[np.float64]
    gate: npt.NDArray[np.float64]
    slow: npt.NDArray[np.float64]
    ratio: float


@functools.lru_cache(maxsize=16)
def _tables(p: DtmfParams) -> _Tables:
    """The detector's matrices for a parameter set (built once; every leg shares them)."""
    fund = list(ROW_FREQS + COL_FREQS)
    fs = SAMPLE_RATE
    nuis = np.ones((BLOCK, 1))
    if p.dialtone_tolerant:
        nuis = np.concatenate([nuis, _cos_sin(DIALTONE_FREQS, BLOCK, fs)], axis=1)
    q = _orthonormal(nuis)
    # Row bins are made orthogonal to the column tones and column bins to the row tones, so a
    # strong tone of one group does not leak into the other group's bins through the window's
    # side lobes (that leakage moves a weak tone's reading by ±1 dB at 8 dB twist).
    q_rows = _orthonormal(np.concatenate([nuis, _cos_sin(COL_FREQS, BLOCK, fs)], axis=1))
    q_cols = _orthonormal(np.concatenate([nuis, _cos_sin(ROW_FREQS, BLOCK, fs)], axis=1))

    def bins(fr: list[float], qq: npt.NDArray[np.float64] = q) -> npt.NDArray[np.float64]:
        b = _project_out(_cos_sin(fr, BLOCK, fs), qq)
        scaled: npt.NDArray[np.float64] = b * np.repeat(np.sqrt(_gains(b, fr, fs)), 2)[None, :]
        return scaled

    def group_bins(fr: list[float]) -> npt.NDArray[np.float64]:
        """Bins for frequencies given as 4 row-group then 4 column-group ones."""
        return np.concatenate([bins(fr[:4], q_rows), bins(fr[4:], q_cols)], axis=1)

    # Fast basis (every window): the 8 DTMF bins, then the projected-out components.
    fast = np.ascontiguousarray(np.concatenate([group_bins(fund), q], axis=1))
    nc = fast.shape[1]
    # (y²) @ _pair_sum: the 8 bin powers; column 8: minus the energy of the projected-out part;
    # column 9: the gate statistic, sum of the 8 powers + ratio · projected-out energy, which must
    # reach ratio · window energy for a window to be looked at any further (row + column can never
    # hold more than all 8 bins).
    ratio = _db(p.energy_ratio_db) / BLOCK  # bin power is per sample, window energy a sum
    pair_sum = np.zeros((nc, 10))
    for k in range(8):
        pair_sum[2 * k:2 * k + 2, k] = 1.0
    pair_sum[16:, 8] = -1.0
    pair_sum[:16, 9] = 1.0
    pair_sum[16:, 9] = ratio
    gate = np.ascontiguousarray(pair_sum[:, 9] / ratio)  # gate: y² @ gate >= energy
    # Slow basis (only windows that pass the level and energy tests): guard bins, second
    # harmonics of the columns, and second harmonics of each row with each column's tone (and its
    # first-order frequency drift) projected out (pair 20 + 4·row + col of the slow powers). Where
    # 2·row lies within 8 % of the column (697/1336, 697/1477, 770/1477, 770/1633, 852/1633) what
    # is left of a column tone 1.5 % off after that projection (up to -11.5 dB re the row at +4 dB
    # twist) is too close to the threshold, and projecting out second-order drift too amplifies
    # noise; those pairs skip the row-harmonic test (the column's upper guard bin still catches a
    # harmonic about as strong as the tones).
    below = [f * (1 - p.guard_offset) for f in fund]
    above = [f * (1 + p.guard_offset) for f in fund]
    t = (np.arange(BLOCK, dtype=np.float64) - (BLOCK - 1) / 2)[:, None] / BLOCK
    row_harm = []
    for fr in ROW_FREQS:
        for fc in COL_FREQS:
            if abs(2 * fr - fc) < 0.08 * fc:
                row_harm.append(np.zeros((BLOCK, 2)))
                continue
            cs = _cos_sin([fc], BLOCK, fs)
            qc = _orthonormal(np.concatenate([nuis, cs, cs * t], axis=1))
            hb = _project_out(_cos_sin([2 * fr], BLOCK, fs), qc)
            row_harm.append(hb * math.sqrt(float(_gains(hb, [2 * fr], fs)[0])))
    slow = np.ascontiguousarray(
        np.concatenate([group_bins(below), group_bins(above), bins([2 * f for f in COL_FREQS]), *row_harm],
                       axis=1))
    for m in (fast, pair_sum, gate, slow):
        m.setflags(write=False)
    return _Tables(fast, pair_sum, gate, slow, ratio)


class DtmfDetector:
    """Streaming DTMF detector; feed it frames or arbitrary chunks, get one event per key press.

    ``process(frame)`` / ``feed(samples, pts)`` return the events completed by that audio; an event
    is complete once the tone has ended (``misses_to_end`` windows later, about 40 ms). The
    detector's matrices are built once per parameter set and shared, so a detector per leg is cheap.
    :attr:`digit_in_progress` tells a caller that wants to react at the start of a tone (barge-in)
    which digit is sounding now. Pts gaps are filled with silence; :meth:`flush` ends a tone
    still sounding at the end of the stream.
    """

    MAX_GAP = 8 * SAMPLE_RATE  # a larger pts jump restarts the detector instead of filling silence

    def __init__(self, params: DtmfParams | None = None, sample_rate: int = SAMPLE_RATE) -> None:
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"the DTMF detector works at {SAMPLE_RATE} Hz, not {sample_rate}")
        self.params = p = params or DtmfParams()
        t = _tables(p)
        self._fast, self._pair_sum, self._gate, self._slow = t.fast, t.pair_sum, t.gate, t.slow
        self._ratio = t.ratio
        self._thr = dbm0_to_peak(p.threshold_dbm0) ** 2 / 2
        self._norm_twist = _db(p.normal_twist_db)
        self._rev_twist = _db(p.reverse_twist_db)
        self._rel_peak = _db(p.relative_peak_db)
        self._harm = _db(-p.harmonic_db)
        self._buf = np.zeros(HOP + 1024)
        self._views: dict[int, npt.NDArray[np.float64]] = {}
        self._ones = np.ones(BLOCK)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self, pts: int = 0) -> None:
        """Forget everything; the next sample fed is at ``pts``."""
        self._stream_start = pts
        self._fed = False
        # _buf holds the last whole half block (at first: silence before the stream), then the
        # samples not yet making a whole half block (_fill of them).
        self._buf[:HOP] = 0.0
        self._fill = 0
        self._half_pts = pts  # pts of the first half block after the kept one
        self._next_pts = pts
        self._run_digit = -1
        self._run = 0
        self._run_start = 0
        self._cur = -1
        self._cur_start = 0
        self._last_hit_end = 0
        self._misses = 0
        self._pow_lo = 0.0
        self._pow_hi = 0.0
        self._nhits = 0

    @property
    def digit_in_progress(self) -> tuple[str, int] | None:
        """(digit, start pts) of the tone sounding now, if one has been recognised."""
        if self._cur < 0:
            return None
        return KEYPAD[self._cur], max(self._cur_start, self._stream_start)

    @property
    def next_pts(self) -> int:
        """pts the next fed sample is expected to have."""
        return self._next_pts

    # ------------------------------------------------------------------ input
    def process(self, frame: AudioFrame) -> list[DtmfEvent]:
        if frame.sample_rate != SAMPLE_RATE:
            raise ValueError(f"frame at {frame.sample_rate} Hz; the DTMF detector needs {SAMPLE_RATE} Hz")
        return self.feed(frame.samples, frame.pts)

    def feed(self, samples: npt.ArrayLike, pts: int | None = None) -> list[DtmfEvent]:
        """Feed 16-bit linear samples (any length); ``pts`` of the first one (default: contiguous)."""
        x = np.asarray(samples)
        events: list[DtmfEvent] = []
        if pts is not None and not self._fed:
            self.reset(pts)
        if pts is not None and pts != self._next_pts:
            gap = pts - self._next_pts
            if gap < 0:
                raise ValueError(f"pts went backwards: expected {self._next_pts}, got {pts}")
            if gap > self.MAX_GAP:
                events += self.flush()
                self.reset(pts)
            else:
                x = np.concatenate([np.zeros(gap, dtype=x.dtype), x])
        self._fed = True
        n = x.shape[0]
        self._next_pts += n
        end = HOP + self._fill + n
        if end > self._buf.shape[0]:
            grown = np.zeros(end + 1024)
            grown[:HOP + self._fill] = self._buf[:HOP + self._fill]
            self._buf = grown
            self._views.clear()
        buf = self._buf
        buf[HOP + self._fill:end] = x
        m = (end - HOP) // HOP  # new whole half blocks = windows completed
        if m == 0:
            self._fill += n
            return events
        win = self._views.get(m)
        if win is None:  # the m overlapping windows over the start of the buffer, as a view
            win = np.lib.stride_tricks.as_strided(buf, shape=(m, BLOCK), strides=(HOP * buf.strides[0], buf.strides[0]),
                                                  writeable=False)
            self._views[m] = win
        # (numpy call overhead dominates at this size: these are the cheapest forms measured)
        w2 = win.copy()  # contiguous rows: BLAS takes it (the overlapping view it would not)
        y = np.dot(w2, self._fast)
        y *= y
        w2 *= w2
        energy = np.dot(w2, self._ones)
        base = self._half_pts - HOP  # window i starts at base + i·HOP
        gate = np.dot(y, self._gate) - energy
        if max(gate.tolist()) >= 0:
            self._analyse(win, y, energy, gate, base, events)
        elif self._cur >= 0 or self._run:
            self._track([-1] * m, {}, base, events)
        self._half_pts += m * HOP
        keep = end - m * HOP
        buf[:keep] = buf[m * HOP:end]
        self._fill = keep - HOP
        return events

    def flush(self) -> list[DtmfEvent]:
        """End of stream: report a tone still sounding (its end is the last window that heard it)."""
        events: list[DtmfEvent] = []
        if self._cur >= 0:
            events.append(self._event())
            self._cur = -1
        self._run_digit, self._run = -1, 0
        return events

    # ------------------------------------------------------------------ analysis
    def _analyse(self, win: npt.NDArray[np.float64], y2: npt.NDArray[np.float64], energy: npt.NDArray[np.float64],
                 gate: npt.NDArray[np.float64], base: int, events: list[DtmfEvent]) -> None:
        """The full tests, on the windows that passed the gate (``y2``: squared fast-basis outputs)."""
        pw = (y2 @ self._pair_sum).tolist()
        en = energy.tolist()
        thr, ratio = self._thr, self._ratio
        todo: list[tuple[int, list[float], float, float]] = []
        for i, gi in enumerate(gate.tolist()):
            if gi < 0:
                continue
            w, e = pw[i], en[i]
            pr, pc = max(w[:4]), max(w[4:8])
            if pr >= thr and pc >= thr and pr + pc >= ratio * (e + w[8]):  # level and energy ratio
                todo.append((i, w, pr, pc))
        cand = [-1] * len(pw)
        powers: dict[int, tuple[float, float]] = {}
        if todo:
            ys = np.dot(win[[t[0] for t in todo]], self._slow)
            ys *= ys
            # per window: guards below (0-7), above (8-15), column harmonics (16-19), row harmonics (20-35)
            px = (ys[:, 0::2] + ys[:, 1::2]).tolist()
            rel, inv_rev, inv_norm, inv_harm = self._rel_peak, 1 / self._rev_twist, 1 / self._norm_twist, 1 / self._harm
            for (i, w, pr, pc), g in zip(todo, px, strict=True):
                rows, cols = w[:4], w[4:8]
                r, c = rows.index(pr), cols.index(pc)
                rows.sort()
                cols.sort()
                # Each tone must beat: the runner-up of its group by the relative peak, the other tone by
                # the allowed twist, its two guard bins, and its own second harmonic by harmonic_db.
                if (pr >= max(rows[2] * rel, pc * inv_rev, g[r], g[8 + r], g[20 + 4 * r + c] * inv_harm)
                        and pc >= max(cols[2] * rel, pr * inv_norm, g[4 + c], g[12 + c], g[16 + c] * inv_harm)):
                    cand[i] = 4 * r + c
                    powers[i] = (pr, pc)
        self._track(cand, powers, base, events)

    def _track(self, cand: list[int], powers: dict[int, tuple[float, float]], base: int,
               events: list[DtmfEvent]) -> None:
        p = self.params
        for i, d in enumerate(cand):
            s = base + i * HOP
            if d >= 0 and d == self._run_digit:
                self._run += 1
            elif d >= 0:
                self._run_digit, self._run, self._run_start = d, 1, s
            else:
                self._run_digit, self._run = -1, 0
            if self._cur >= 0:
                if d == self._cur:
                    self._misses = 0
                    self._last_hit_end = s + BLOCK
                    lo, hi = powers[i]
                    self._pow_lo += lo
                    self._pow_hi += hi
                    self._nhits += 1
                else:
                    self._misses += 1
                    if self._misses >= p.misses_to_end or (self._run >= p.hits_to_begin and d >= 0):
                        events.append(self._event())
                        self._cur = -1
            if self._cur < 0 and self._run >= p.hits_to_begin:
                self._cur = self._run_digit
                self._cur_start = self._run_start
                self._last_hit_end = s + BLOCK
                self._misses = 0
                self._pow_lo = self._pow_hi = 0.0
                self._nhits = 0

    def _event(self) -> DtmfEvent:
        n = max(self._nhits, 1)
        lo = rms_to_dbm0(math.sqrt(self._pow_lo / n)) if self._pow_lo > 0 else -120.0
        hi = rms_to_dbm0(math.sqrt(self._pow_hi / n)) if self._pow_hi > 0 else -120.0
        ev = DtmfEvent(KEYPAD[self._cur], max(self._cur_start, self._stream_start), self._last_hit_end,
                       level_dbm0=(lo + hi) / 2, twist_db=hi - lo)
        log.debug("DTMF %s %d..%d", ev.digit, ev.start, ev.end)
        return ev


def detect(samples: npt.ArrayLike, params: DtmfParams | None = None, chunk: int = 160) -> list[DtmfEvent]:
    """All key presses in a whole signal (fed in ``chunk``-sample pieces, then flushed)."""
    det = DtmfDetector(params)
    x = np.asarray(samples)
    out: list[DtmfEvent] = []
    for i in range(0, x.shape[0], chunk):
        out += det.feed(x[i:i + chunk])
    return out + det.flush()


# ---------------------------------------------------------------------- generators
def dtmf_tone(digit: str, n: int, level_dbm0: float = -10.0, twist_db: float = 0.0,
              low_offset: float = 0.0, high_offset: float = 0.0) -> Samples:
    """One DTMF burst of ``n`` samples (no gap).

    ``level_dbm0`` is the low-group tone's level; the high-group tone is at ``level_dbm0 +
    twist_db`` (positive twist: high group stronger). Offsets are fractions (0.015 = +1.5 %).
    """
    lo, hi = _freqs(digit)
    seq = ToneSequence()
    seq.add([lo * (1 + low_offset), hi * (1 + high_offset)], [level_dbm0, level_dbm0 + twist_db], n)
    return seq.read(n)


def _freqs(digit: str) -> tuple[float, float]:
    try:
        return DTMF_FREQS[digit.upper()]
    except KeyError:
        raise ValueError(f"not a DTMF digit: {digit!r} (use 0-9, *, #, A-D)") from None


PAUSE_MS = 500  # ',' in SendDigits


class DtmfSender:
    """Streams a SendDigits string as audio: each digit ``tone_ms`` on, ``gap_ms`` off between
    digits (none after the last), ``,`` a 500 ms pause. Read it in frames with :meth:`read`.
    """

    def __init__(self, digits: str, tone_ms: int = 250, gap_ms: int = 100, level_dbm0: float = -10.0,
                 twist_db: float = 0.0, sample_rate: int = SAMPLE_RATE) -> None:
        bad = [ch for ch in digits if ch != "," and ch.upper() not in DIGITS]
        if bad:
            raise ValueError(f"invalid character {bad[0]!r} in digits (use 0-9, *, #, A-D and ',')")
        if tone_ms <= 0 or gap_ms < 0:
            raise ValueError("tone_ms must be positive and gap_ms not negative")
        self.digits = digits
        self._seq = ToneSequence(sample_rate)
        ms = sample_rate // 1000
        items = list(digits)
        for i, ch in enumerate(items):
            if ch == ",":
                self._seq.add([], [], PAUSE_MS * ms)
                continue
            lo, hi = _freqs(ch)
            self._seq.add([lo, hi], [level_dbm0, level_dbm0 + twist_db], tone_ms * ms)
            if gap_ms and i + 1 < len(items) and items[i + 1] != ",":
                self._seq.add([], [], gap_ms * ms)

    @property
    def total_samples(self) -> int:
        return self._seq.total_samples

    @property
    def remaining(self) -> int:
        return self._seq.remaining

    @property
    def done(self) -> bool:
        return self._seq.remaining == 0

    def read(self, n: int) -> Samples:
        """Next ``n`` samples (zero-padded once the digits are sent)."""
        return self._seq.read(n)

    def frames(self, start_pts: int = 0, n: int = 160) -> list[AudioFrame]:
        """The whole remaining signal as frames (the last one padded with silence)."""
        out: list[AudioFrame] = []
        pts = start_pts
        while not self.done:
            out.append(AudioFrame(self.read(n), pts))
            pts += n
        return out
