"""Call-progress tones: country tables, a cadence generator and a streaming detector.

Public API
----------
* :data:`COUNTRIES` / :func:`country` — tone plans (:class:`CountryTones`) by ISO code: ``us``
  (alias ``ca``, ``nanp``), ``uk`` (``gb``) and the CEPT 425 Hz family ``at be bg ch cz de dk ee es fi
  fr gr hu it nl no pl pt se`` (HARDWARE.md §3.3, Asterisk ``indications.conf``, ITU tones-0203).
  Kinds (:class:`ToneKind`): dial, busy, congestion (reorder), ringback, sit, unobtainable (UK NU).
* :func:`render_tone` ``(country, kind, seconds, level_dbm0=None) -> Samples`` and the streaming
  :class:`ProgressToneGenerator` — what the line emulators and HIL play. ``level_dbm0`` is the
  level of *each* frequency component (the way tone plans state it); ``None`` takes the table's.
* :class:`ProgressDetector` ``(country).process(frame) -> list[ProgressEvent]`` — fed 20 ms
  :class:`~media.frame.AudioFrame` s (any length works; analysis runs on 160-sample blocks).

How the detector works
----------------------
1. *Tone presence, per 160-sample block.* For every frequency set the country uses (e.g. 350+440,
   480+620, 425) the block is projected onto the span of the sines and cosines of that set; the
   share of the block's energy inside that subspace must be at least ``min_fraction`` (0.7) and the
   block level at least ``min_level_dbm0`` (−42 dBm0). For a two-tone set each component must hold
   at least ``min_share`` of the set's power (twist within about ±9.5 dB), so a lone 440 Hz is not
   "350+440". This is Asterisk's "tone beats the other bins and the frame energy" test done as one
   least-squares fit (one matrix product per block), and it accepts about ±3 % frequency error
   (±2 % is guaranteed at 15 dB SNR) and rejects ±6 %. Quiet blocks (below the minimum level, or
   8 dB under the last tone) are *silence*; anything else (speech, DTMF, music) is *other*.
2. *Segments.* Runs of equal labels become segments (tone-of-set, or silence) with durations in
   samples. A single "other" block between two labelled runs is an edge: its duration is split by
   the energy it holds relative to the neighbouring tone, which keeps boundaries within a few ms. Two
   or more "other" blocks reset the cadence history (speech never builds a cadence).
3. *Cadence.* Each kind has a cyclic pattern of (frequency set or silence, seconds). A kind is
   declared when the last ``R`` segments match consecutive pattern elements within ±10 % (+15 ms of
   measuring slack), the newest one still running and only needing its minimum. ``R`` is 4 for busy
   and congestion (2 cycles), 3 for ringback and SIT, and is raised automatically when a shorter
   window of one kind could be part of another kind of the same country (e.g. Spanish busy 0.2/0.2
   is a window of Spanish congestion, so Spanish busy needs 3 cycles). Where two kinds of a country
   are identical (PL, HU: busy = congestion) the first listed (busy) is reported. Continuous tones
   (dial, UK NU) need ``dial_min_s`` (1 s) of uninterrupted tone, and longer than 1.1 × the longest
   "on" of any cadenced kind on the same frequencies plus 0.1 s (CEPT ringback is 1–1.5 s of 425 Hz).
4. *Events.* :class:`ProgressEvent` reports the kind, ``start_pts`` — where the tone began (the
   earliest segment consistent with the pattern, so a recording can be cut there) — and ``pts``,
   the end of the block that completed the decision. When a detected tone stops or breaks its
   cadence a second event with ``end_pts`` set follows.

Segment labelling lags one block (20 ms) behind the input, so decisions come out one frame after the
audio that completed them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples, to_int16
from media.levels import dbm0_to_rms
from media.tones import ToneGenerator

log = logging.getLogger(__name__)

__all__ = [
    "COUNTRIES",
    "CountryTones",
    "ProgressDetector",
    "ProgressEvent",
    "ProgressToneGenerator",
    "Segment",
    "ToneKind",
    "TonePattern",
    "country",
    "render_tone",
]


class ToneKind(StrEnum):
    DIAL = "dial"
    BUSY = "busy"
    CONGESTION = "congestion"  # reorder (NA), "beep-bip engaged" (UK)
    RINGBACK = "ringback"
    SIT = "sit"  # special information tone (three rising tones)
    UNOBTAINABLE = "unobtainable"  # UK number-unobtainable: 400 Hz continuous


FreqSet = tuple[float, ...]


@dataclass(frozen=True)
class Segment:
    """One element of a cadence: a tone (``freqs``) or silence (``freqs == ()``) for ``seconds``.

    ``alternatives``: other frequency sets the detector also accepts for this element (SIT's
    low/high variants, UK dial 350+450). ``tolerance``: relative timing tolerance of this element
    (``None``: the detector's ``timing_tolerance``, ±10 %).
    """

    freqs: FreqSet
    seconds: float
    alternatives: tuple[FreqSet, ...] = ()
    tolerance: float | None = None

    @property
    def is_tone(self) -> bool:
        return bool(self.freqs)


@dataclass(frozen=True)
class TonePattern:
    """A tone kind in one country: repeating ``segments``; a single tone segment means continuous."""

    kind: ToneKind
    segments: tuple[Segment, ...]
    levels_dbm0: tuple[float, ...]  # generator level per frequency of the first segment's set
    min_segments: int = 4  # R before automatic widening (see module docstring)

    @property
    def continuous(self) -> bool:
        return len(self.segments) == 1

    @property
    def freqs(self) -> FreqSet:
        return self.segments[0].freqs


@dataclass(frozen=True)
class CountryTones:
    code: str
    name: str
    patterns: tuple[TonePattern, ...]

    def pattern(self, kind: ToneKind | str) -> TonePattern:
        k = ToneKind(kind)
        for p in self.patterns:
            if p.kind == k:
                return p
        raise KeyError(f"country {self.code!r} has no {k.value} tone")

    @property
    def kinds(self) -> tuple[ToneKind, ...]:
        return tuple(p.kind for p in self.patterns)


# ------------------------------------------------------------------------------------------ tables
def _cadence(freqs: FreqSet, *durations: float, alternatives: tuple[FreqSet, ...] = ()) -> tuple[Segment, ...]:
    """on, off, on, off... (a single duration means continuous)."""
    if len(durations) == 1:
        return (Segment(freqs, math.inf, alternatives),)
    return tuple(Segment(freqs if i % 2 == 0 else (), d, alternatives if i % 2 == 0 else ())
                 for i, d in enumerate(durations))


# SIT: three rising tones. NA encodes the SIT type in low/high frequency and short/long duration
# variants (913.8/985.2, 1370.6/1428.5, 1776.7 Hz; 274 or 380 ms); ITU E.180 nominal 950/1400/1800.
_SIT = (
    Segment((950.0,), 0.33, ((913.8,), (985.2,)), tolerance=0.3),
    Segment((1400.0,), 0.33, ((1370.6,), (1428.5,)), tolerance=0.3),
    Segment((1800.0,), 0.33, ((1776.7,),), tolerance=0.3),
    Segment((), 1.0, tolerance=0.5),
)


def _sit(level: float) -> TonePattern:
    return TonePattern(ToneKind.SIT, _SIT, (level,), min_segments=3)


def _cept(code: str, name: str, hz: float, busy: tuple[float, ...], congestion: tuple[float, ...],
          ringback: tuple[float, ...], dial: tuple[float, ...] = (math.inf,), level: float = -13.0) -> CountryTones:
    f = (hz,)
    return CountryTones(code, name, (
        TonePattern(ToneKind.DIAL, _cadence(f, *dial), (level,), min_segments=1 if len(dial) == 1 else 4),
        TonePattern(ToneKind.BUSY, _cadence(f, *busy), (level,)),
        TonePattern(ToneKind.CONGESTION, _cadence(f, *congestion), (level,)),
        TonePattern(ToneKind.RINGBACK, _cadence(f, *ringback), (level,), min_segments=3),
        _sit(-13.0),
    ))


_NANP = CountryTones("us", "North America (NANP precise tone plan)", (
    TonePattern(ToneKind.DIAL, _cadence((350.0, 440.0), math.inf), (-13.0, -13.0), min_segments=1),
    TonePattern(ToneKind.BUSY, _cadence((480.0, 620.0), 0.5, 0.5), (-24.0, -24.0)),
    TonePattern(ToneKind.CONGESTION, _cadence((480.0, 620.0), 0.25, 0.25), (-24.0, -24.0)),
    TonePattern(ToneKind.RINGBACK, _cadence((440.0, 480.0), 2.0, 4.0), (-19.0, -19.0), min_segments=3),
    _sit(-14.0),
))

# BT SIN 350 as tabulated by Asterisk; levels from the ZyXEL UK profile (HARDWARE.md §3.3). Some
# sources give BT dial tone as 350+450 Hz: the detector accepts both.
_UK = CountryTones("uk", "United Kingdom (BT SIN 350)", (
    TonePattern(ToneKind.DIAL, _cadence((350.0, 440.0), math.inf, alternatives=((350.0, 450.0),)),
                (-22.0, -18.0), min_segments=1),
    TonePattern(ToneKind.BUSY, _cadence((400.0,), 0.375, 0.375), (-18.0,)),
    TonePattern(ToneKind.CONGESTION, _cadence((400.0,), 0.4, 0.35, 0.225, 0.525), (-18.0,)),
    TonePattern(ToneKind.RINGBACK, _cadence((400.0, 450.0), 0.4, 0.2, 0.4, 2.0), (-19.0, -19.0), min_segments=3),
    TonePattern(ToneKind.UNOBTAINABLE, _cadence((400.0,), math.inf), (-18.0,), min_segments=1),
    _sit(-18.0),
))

_TABLES: tuple[CountryTones, ...] = (
    _NANP,
    _UK,
    _cept("at", "Austria", 420.0, (0.4, 0.4), (0.2, 0.2), (1.0, 5.0)),
    _cept("be", "Belgium", 425.0, (0.5, 0.5), (0.167, 0.167), (1.0, 3.0)),
    _cept("bg", "Bulgaria", 425.0, (0.5, 0.5), (0.25, 0.25), (1.0, 4.0)),
    _cept("ch", "Switzerland", 425.0, (0.5, 0.5), (0.2, 0.2), (1.0, 4.0)),
    _cept("cz", "Czech Republic", 425.0, (0.33, 0.33), (0.165, 0.165), (1.0, 4.0), dial=(0.33, 0.33, 0.66, 0.66)),
    _cept("de", "Germany", 425.0, (0.48, 0.48), (0.24, 0.24), (1.0, 4.0)),
    _cept("dk", "Denmark", 425.0, (0.5, 0.5), (0.2, 0.2), (1.0, 4.0)),
    _cept("ee", "Estonia", 425.0, (0.3, 0.3), (0.2, 0.2), (1.0, 4.0)),
    _cept("es", "Spain", 425.0, (0.2, 0.2), (0.2, 0.2, 0.2, 0.2, 0.2, 0.6), (1.5, 3.0)),
    _cept("fi", "Finland", 425.0, (0.3, 0.3), (0.2, 0.2), (1.0, 4.0)),
    _cept("fr", "France", 440.0, (0.5, 0.5), (0.25, 0.25), (1.5, 3.5)),
    _cept("gr", "Greece", 425.0, (0.3, 0.3), (0.2, 0.2), (1.0, 4.0), dial=(0.2, 0.3, 0.7, 0.8)),
    _cept("hu", "Hungary", 425.0, (0.3, 0.3), (0.3, 0.3), (1.25, 3.75)),
    _cept("it", "Italy", 425.0, (0.5, 0.5), (0.2, 0.2), (1.0, 4.0), dial=(0.2, 0.2, 0.6, 1.0)),
    _cept("nl", "Netherlands", 425.0, (0.5, 0.5), (0.25, 0.25), (1.0, 4.0)),
    _cept("no", "Norway", 425.0, (0.5, 0.5), (0.2, 0.2), (1.0, 4.0)),
    _cept("pl", "Poland", 425.0, (0.5, 0.5), (0.5, 0.5), (1.0, 4.0)),
    _cept("pt", "Portugal", 425.0, (0.5, 0.5), (0.2, 0.2), (1.0, 5.0)),
    _cept("se", "Sweden", 425.0, (0.25, 0.25), (0.25, 0.75), (1.0, 5.0)),
)

COUNTRIES: dict[str, CountryTones] = {t.code: t for t in _TABLES}
_ALIASES = {"ca": "us", "nanp": "us", "na": "us", "gb": "uk"}


def country(code: str | CountryTones) -> CountryTones:
    """The tone plan for an ISO country code (case-insensitive; ``ca``/``nanp`` → us, ``gb`` → uk)."""
    if isinstance(code, CountryTones):
        return code
    key = code.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return COUNTRIES[key]
    except KeyError:
        raise ValueError(f"unknown call-progress country {code!r}; known: "
                         f"{', '.join(sorted([*COUNTRIES, *_ALIASES]))}") from None


# ------------------------------------------------------------------------------------------ generator
class ProgressToneGenerator:
    """Streaming renderer of one country tone, cadence included, phase-continuous within each set.

    ``level_dbm0``: level of each frequency component (``None``: the table's levels).
    ``freq_scale`` / ``time_scale`` shift every frequency / stretch every duration (test knobs for
    off-nominal exchanges). The cadence starts with its first "on" at sample 0.
    """

    def __init__(self, country_code: str | CountryTones, kind: ToneKind | str, level_dbm0: float | None = None, *,
                 freq_scale: float = 1.0, time_scale: float = 1.0, sample_rate: int = SAMPLE_RATE) -> None:
        self.pattern = country(country_code).pattern(kind)
        self.sample_rate = sample_rate
        n_first = len(self.pattern.freqs)
        self._gens: dict[FreqSet, ToneGenerator] = {}
        for seg in self.pattern.segments:
            if seg.is_tone and seg.freqs not in self._gens:
                if level_dbm0 is not None:
                    lv: Sequence[float] = [level_dbm0] * len(seg.freqs)
                elif len(seg.freqs) == n_first:
                    lv = self.pattern.levels_dbm0
                else:
                    lv = [self.pattern.levels_dbm0[0]] * len(seg.freqs)
                self._gens[seg.freqs] = ToneGenerator([f * freq_scale for f in seg.freqs], lv, sample_rate)
        if self.pattern.continuous:
            self._bounds: list[int] = []
            self._cycle = 0
        else:
            edges = np.cumsum([s.seconds * time_scale for s in self.pattern.segments]) * sample_rate
            self._bounds = [round(float(e)) for e in edges]
            self._cycle = self._bounds[-1]
        self._pos = 0

    def render(self, n: int) -> npt.NDArray[np.float64]:
        out = np.zeros(max(n, 0), dtype=np.float64)
        if self.pattern.continuous:
            out[:] = self._gens[self.pattern.freqs].render(n)
            self._pos += n
            return out
        i = 0
        while i < n:
            t = self._pos % self._cycle
            k = next(j for j, b in enumerate(self._bounds) if t < b)
            take = min(n - i, self._bounds[k] - t)
            seg = self.pattern.segments[k]
            if seg.is_tone:
                out[i:i + take] = self._gens[seg.freqs].render(take)
            i += take
            self._pos += take
        return out

    def samples(self, n: int) -> Samples:
        return to_int16(self.render(n))


def render_tone(country_code: str | CountryTones, kind: ToneKind | str, seconds: float,
                level_dbm0: float | None = None, *, freq_scale: float = 1.0, time_scale: float = 1.0,
                sample_rate: int = SAMPLE_RATE) -> Samples:
    """``seconds`` of a country's tone with its cadence (see :class:`ProgressToneGenerator`)."""
    gen = ProgressToneGenerator(country_code, kind, level_dbm0, freq_scale=freq_scale, time_scale=time_scale,
                                sample_rate=sample_rate)
    return gen.samples(round(seconds * sample_rate))


# ------------------------------------------------------------------------------------------ detector
@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A call-progress tone was recognised (``end_pts is None``) or a recognised tone stopped.

    ``start_pts``: leg time where the tone began; ``pts``: leg time at which the decision was made;
    ``end_pts``: where the tone (or its cadence) stopped, on the second event of an episode.
    """

    kind: ToneKind
    start_pts: int
    pts: int
    end_pts: int | None = None

    @property
    def ended(self) -> bool:
        return self.end_pts is not None


_SILENCE = -1  # segment label for silence; tone labels are indexes of frequency sets
_OTHER = -2


@dataclass
class _Elem:
    label: int
    start: float  # pts (float: edge blocks are split)
    dur: float
    truncated: bool = False  # began at a reset point (leg start, after "other" audio)


@dataclass(frozen=True)
class _CElem:  # compiled pattern element
    labels: frozenset[int]
    lo: float  # samples
    hi: float
    is_tone: bool


@dataclass(frozen=True)
class _CPattern:
    kind: ToneKind
    elems: tuple[_CElem, ...]
    r: int  # segments needed for a decision
    continuous: bool


@dataclass
class _Pending:
    pat: _CPattern
    first: int  # index in history of the window's first element (history length at the time)
    phase: int  # pattern index expected for the in-progress element
    due: float  # pts the in-progress element must reach


@dataclass
class _Lock:
    pat: _CPattern
    phase: int  # pattern index of the in-progress element
    start_pts: int


@dataclass
class _State:
    history: list[_Elem] = field(default_factory=list)
    cur: _Elem | None = None
    pending: list[_Pending] = field(default_factory=list)
    lock: _Lock | None = None


class ProgressDetector:
    """Streaming call-progress detector for one leg (see the module docstring for the method).

    ``process(frame)`` returns the events completed by that frame. Frames must be 8 kHz; their
    ``pts`` should be contiguous (a gap resets the detector).
    """

    BLOCK = FRAME_SAMPLES

    def __init__(self, country_code: str | CountryTones = "us", *, min_level_dbm0: float = -42.0,
                 min_fraction: float = 0.7, min_share: float = 0.1, timing_tolerance: float = 0.10,
                 timing_slack_s: float = 0.015, dial_min_s: float = 1.0, relative_silence_db: float = 8.0,
                 kinds: Iterable[ToneKind | str] | None = None) -> None:
        self.country = country(country_code)
        wanted = {ToneKind(k) for k in kinds} if kinds is not None else set(self.country.kinds)
        patterns = [p for p in self.country.patterns if p.kind in wanted]
        self.min_fraction = min_fraction
        self.min_share = min_share
        self._min_energy = self.BLOCK * dbm0_to_rms(min_level_dbm0) ** 2
        self._rel_silence = 10 ** (-relative_silence_db / 10)
        # frequency sets -> labels
        sets: list[FreqSet] = []
        for p in patterns:
            for s in p.segments:
                for fs in (s.freqs, *s.alternatives):
                    if fs and fs not in sets:
                        sets.append(fs)
        self.freq_sets: tuple[FreqSet, ...] = tuple(sets)
        self._build_projections()
        self._patterns = self._compile(patterns, timing_tolerance, timing_slack_s, dial_min_s)
        self._tail: Samples | None = None  # samples short of a whole block
        self._next_pts: int | None = None
        self.reset()

    # ------------------------------------------------------------------ set-up
    def _build_projections(self) -> None:
        """One matrix for the whole per-block analysis: for every frequency set an orthonormal basis of
        its sines and cosines (energy in the set's subspace), then, for sets of two or more tones, the
        least-squares rows that give each component's amplitude (the twist check)."""
        n = np.arange(self.BLOCK)
        q_rows: list[npt.NDArray[np.float64]] = []
        fit_rows: list[npt.NDArray[np.float64]] = []
        sizes = [2 * len(fs) for fs in self.freq_sets]
        n_q = sum(sizes)
        self._fit_at: list[int] = []
        for fs in self.freq_sets:
            basis = np.vstack([f(2 * np.pi * fr * n / SAMPLE_RATE) for fr in fs for f in (np.cos, np.sin)])
            q, _ = np.linalg.qr(basis.T)
            q_rows.append(q.T)
            if len(fs) > 1:
                self._fit_at.append(n_q + sum(r.shape[0] for r in fit_rows))
                fit_rows.append(np.linalg.pinv(basis.T))
            else:
                self._fit_at.append(-1)
        rows = q_rows + fit_rows
        self._proj = np.ascontiguousarray(np.vstack(rows)) if rows else np.zeros((0, self.BLOCK))
        self._n_q = n_q
        summing = np.zeros((len(self.freq_sets), n_q))
        at = 0
        for i, sz in enumerate(sizes):
            summing[i, at:at + sz] = 1.0
            at += sz
        self._summing = summing
        self._set_sizes = [len(fs) for fs in self.freq_sets]

    def _compile(self, patterns: list[TonePattern], tol: float, slack_s: float,
                 dial_min_s: float) -> tuple[_CPattern, ...]:
        slack = slack_s * SAMPLE_RATE
        label_of = {fs: i for i, fs in enumerate(self.freq_sets)}
        compiled: list[_CPattern] = []
        longest_on: dict[int, float] = {}
        for p in patterns:
            if p.continuous:
                continue
            for s in p.segments:
                if s.is_tone:
                    longest = s.seconds * (1 + (tol if s.tolerance is None else s.tolerance))
                    for fs in (s.freqs, *s.alternatives):
                        lab = label_of[fs]
                        longest_on[lab] = max(longest_on.get(lab, 0.0), longest)
        for p in patterns:
            elems = []
            for s in p.segments:
                labels = frozenset(label_of[fs] for fs in (s.freqs, *s.alternatives)) if s.is_tone \
                    else frozenset({_SILENCE})
                if math.isinf(s.seconds):
                    on = max((longest_on.get(lab, 0.0) for lab in labels), default=0.0)
                    lo = max(dial_min_s, on + 0.1 if on else 0.0) * SAMPLE_RATE
                    elems.append(_CElem(labels, lo, math.inf, True))
                else:
                    d = s.seconds * SAMPLE_RATE
                    t = tol if s.tolerance is None else s.tolerance
                    elems.append(_CElem(labels, d * (1 - t) - slack, d * (1 + t) + slack, s.is_tone))
            compiled.append(_CPattern(p.kind, tuple(elems), p.min_segments, p.continuous))
        # a kind no window of which can be told from an earlier kind is reported as that kind
        cadenced = [p for p in compiled if not p.continuous]
        kept: list[_CPattern] = []
        for a in cadenced:
            limit = 4 * len(a.elems)
            twin = next((b for b in kept if _windows_clash(a, b, limit) and _windows_clash(b, a, limit)), None)
            if twin is not None:
                log.debug("%s: %s is indistinguishable from %s; reporting the latter", self.country.code,
                          a.kind.value, twin.kind.value)
                continue
            kept.append(a)
        # widen R where a window of one kind could be a window of another kind
        out = [p for p in compiled if p.continuous]
        for a in kept:
            others = [b for b in kept if b is not a]
            r = a.r
            limit = 4 * len(a.elems)
            while r < limit and any(_windows_clash(a, b, r) for b in others):
                r += 1
            out.append(_CPattern(a.kind, a.elems, r, False))
        return tuple(out)

    def decision_segments(self, kind: ToneKind | str) -> int:
        """How many segments the detector needs to declare ``kind`` (1 for continuous tones)."""
        k = ToneKind(kind)
        for p in self._patterns:
            if p.kind == k:
                return p.r
        raise KeyError(f"{self.country.code}: {k.value} is not detected separately")

    def tone_onset(self, kind: ToneKind | str) -> int | None:
        """Where a ``kind`` tone sounding now began (pts), from the segments so far and without waiting
        for a decision: for a tone that something else (a modem's own detector) has reported, so that a
        recording can be cut where the tone started. The run of segments back from the newest that fit
        ``kind``'s frequencies (and, for a cadenced kind, its silences) gives the first tone segment of
        it; None if the audio does not end in such a tone (e.g. the newest segment is speech)."""
        k = ToneKind(kind)
        pat = next((p for p in self._patterns if p.kind == k), None)
        if pat is None:
            return None
        st = self._st
        if st.lock is not None and st.lock.pat.kind == k:
            return st.lock.start_pts
        labels = frozenset().union(*(e.labels for e in pat.elems))
        run = [*st.history, st.cur] if st.cur is not None else list(st.history)
        first: _Elem | None = None
        for el in reversed(run):
            if el.label not in labels:
                break
            if el.label >= 0:
                first = el
        return round(first.start) if first is not None else None

    # ------------------------------------------------------------------ streaming
    def reset(self) -> None:
        self._st = _State()
        self._prev: tuple[int, float, int] | None = None  # raw label, energy, pts of the block awaiting its label
        self._prev_resolved = _OTHER
        self._ref_energy = 0.0  # mean block energy of the current / last tone run
        self._run_energy = 0.0
        self._run_blocks = 0
        self._last_tone_energy = 0.0
        self._tail = None
        self._next_pts = None

    def process(self, frame: AudioFrame) -> list[ProgressEvent]:
        if frame.sample_rate != SAMPLE_RATE:
            raise ValueError(f"ProgressDetector needs {SAMPLE_RATE} Hz audio, got {frame.sample_rate}")
        events: list[ProgressEvent] = []
        if self._next_pts is not None and frame.pts != self._next_pts:
            log.debug("pts jump %s -> %s: call-progress detector reset", self._next_pts, frame.pts)
            self._finish(events)
            self.reset()
        samples = frame.samples
        n = samples.shape[0]
        self._next_pts = frame.pts + n
        if n == self.BLOCK and self._tail is None:  # the usual case: one 20 ms frame, one block
            self._block(samples, frame.pts, events)
            return events
        start = frame.pts
        if self._tail is not None:
            start -= len(self._tail)
            samples = np.concatenate([self._tail, samples])
        nb = len(samples) // self.BLOCK
        for b in range(nb):
            self._block(samples[b * self.BLOCK:(b + 1) * self.BLOCK], start + b * self.BLOCK, events)
        rest = samples[nb * self.BLOCK:]
        self._tail = rest.copy() if len(rest) else None
        return events

    def flush(self) -> list[ProgressEvent]:
        """End of the leg: label the last block and close a tone in progress."""
        events: list[ProgressEvent] = []
        self._finish(events)
        self.reset()
        return events

    # ------------------------------------------------------------------ per block
    def _classify(self, blk: Samples) -> tuple[int, float]:
        x = blk.astype(np.float64)
        e = float(x.dot(x))
        if e < self._min_energy:
            return _SILENCE, e
        if self._n_q:
            y = self._proj.dot(x)
            q = y[:self._n_q]
            fr = self._summing.dot(q * q).tolist()
            need = self.min_fraction * e
            best = -1
            for i, v in enumerate(fr):
                # the simplest set that explains the block: a 408 Hz tone also fits 400+450 well
                if v >= need and (best < 0 or (self._set_sizes[i], -v) < (self._set_sizes[best], -fr[best])) \
                        and self._shares_ok(i, y):
                    best = i
            if best >= 0:
                return best, e
        if e < self._last_tone_energy * self._rel_silence:
            return _SILENCE, e
        return _OTHER, e

    def _shares_ok(self, idx: int, y: npt.NDArray[np.float64]) -> bool:
        at = self._fit_at[idx]
        if at < 0:
            return True
        c: list[float] = y[at:at + 2 * self._set_sizes[idx]].tolist()
        p = [c[k] * c[k] + c[k + 1] * c[k + 1] for k in range(0, len(c), 2)]
        return min(p) >= self.min_share * sum(p)

    def _block(self, blk: Samples, pts: int, events: list[ProgressEvent]) -> None:
        label, e = self._classify(blk)
        prev = self._prev
        self._prev = (label, e, pts)
        if prev is None:
            return
        plabel, pe, ppts = prev
        left = self._prev_resolved
        if plabel >= 0 and plabel != left and plabel != label:
            # a one-block tone run is an edge (a truncated sine also fits neighbouring sets) or a glitch
            plabel = _OTHER
        if plabel >= 0 and label == _SILENCE and self._ref_energy and pe < 0.9 * self._ref_energy:
            cut = pe / self._ref_energy * self.BLOCK  # the tone stops inside this block
            self._resolve(plabel, ppts, cut, pe, events, edge=True)
            self._resolve(_SILENCE, ppts + cut, self.BLOCK - cut, pe, events, edge=True)
            self._prev_resolved = _SILENCE
        elif plabel >= 0 and left == _SILENCE and label == plabel and pe < 0.9 * e:
            cut = (1.0 - pe / e) * self.BLOCK  # the tone starts inside this block
            self._resolve(_SILENCE, ppts, cut, pe, events, edge=True)
            self._resolve(plabel, ppts + cut, self.BLOCK - cut, pe, events, edge=True)
            self._prev_resolved = plabel
        elif plabel == _OTHER:
            if left == _OTHER or label == _OTHER:
                self._resolve(_OTHER, ppts, float(self.BLOCK), pe, events)
                self._prev_resolved = _OTHER
            elif left == label:
                self._resolve(left, ppts, float(self.BLOCK), pe, events)
                self._prev_resolved = left
            else:  # an edge between two labelled runs: split the block
                if left >= 0 and label == _SILENCE:
                    r = min(1.0, pe / self._ref_energy) if self._ref_energy else 0.5
                    first, second = left, label
                elif left == _SILENCE and label >= 0:
                    r = 1.0 - min(1.0, pe / e) if e else 0.5
                    first, second = left, label
                else:
                    r, first, second = 0.5, left, label
                cut = r * self.BLOCK
                if cut > 0:
                    self._resolve(first, ppts, cut, pe, events, edge=True)
                if cut < self.BLOCK:
                    self._resolve(second, ppts + cut, self.BLOCK - cut, pe, events, edge=True)
                self._prev_resolved = second
        else:
            self._resolve(plabel, ppts, float(self.BLOCK), pe, events)
            self._prev_resolved = plabel

    def _finish(self, events: list[ProgressEvent]) -> None:
        if self._prev is not None:
            label, e, pts = self._prev
            self._resolve(label, pts, float(self.BLOCK), e, events)
            self._prev = None
        st = self._st
        if st.lock is not None and st.cur is not None:
            cur = st.cur
            still_on = cur.label >= 0 and cur.label in st.lock.pat.elems[st.lock.phase].labels
            end = round(cur.start + cur.dur if still_on else cur.start)
            events.append(ProgressEvent(st.lock.pat.kind, st.lock.start_pts, round(cur.start + cur.dur), end))
            st.lock = None

    # ------------------------------------------------------------------ segments
    def _resolve(self, label: int, start: float, dur: float, energy: float, events: list[ProgressEvent],
                 edge: bool = False) -> None:
        st = self._st
        now = start + dur
        if label == _OTHER:
            if st.lock is not None:
                end = st.cur.start if st.cur is not None and st.cur.label not in \
                    st.lock.pat.elems[st.lock.phase].labels else start
                events.append(ProgressEvent(st.lock.pat.kind, st.lock.start_pts, round(now), round(end)))
                st.lock = None
            st.history.clear()
            st.cur = None
            st.pending.clear()
            return
        if label >= 0 and not edge:
            self._run_energy += energy
            self._run_blocks += 1
            self._ref_energy = self._run_energy / self._run_blocks
            self._last_tone_energy = self._ref_energy
        cur = st.cur
        if cur is not None and cur.label == label:
            cur.dur += dur
        else:
            if cur is not None:
                st.history.append(cur)
                if len(st.history) > 24:
                    del st.history[:8]
                    for pnd in st.pending:
                        pnd.first -= 8
            if label >= 0:
                self._run_energy = 0.0
                self._run_blocks = 0
            st.cur = _Elem(label, start, dur, truncated=cur is None)
            self._on_boundary(events, start)
        self._check_progress(events, now)

    def _on_boundary(self, events: list[ProgressEvent], at: float) -> None:
        """A segment just completed (it is ``history[-1]``); ``cur`` is the new one."""
        st = self._st
        cur = st.cur
        assert cur is not None
        if st.lock is not None:
            lk = st.lock
            done = st.history[-1] if st.history else None
            exp = lk.pat.elems[lk.phase]
            if lk.pat.continuous or done is None or done.dur < exp.lo or done.dur > exp.hi:
                events.append(ProgressEvent(lk.pat.kind, lk.start_pts, round(at), round(at)))
                st.lock = None
            else:
                nxt = (lk.phase + 1) % len(lk.pat.elems)
                if cur.label in lk.pat.elems[nxt].labels:
                    lk.phase = nxt
                else:
                    events.append(ProgressEvent(lk.pat.kind, lk.start_pts, round(at), round(at)))
                    st.lock = None
        st.pending.clear()
        if st.lock is not None:
            return
        h = st.history
        for pat in self._patterns:
            n_e = len(pat.elems)
            need_done = pat.r - 1
            if need_done > len(h):
                continue
            for phase0 in range(n_e):
                if not pat.elems[phase0].is_tone:
                    continue
                ok = True
                for j in range(need_done):
                    el = h[len(h) - need_done + j]
                    pe = pat.elems[(phase0 + j) % n_e]
                    if el.label not in pe.labels or not (pe.lo <= el.dur <= pe.hi):
                        ok = False
                        break
                if not ok:
                    continue
                ph = (phase0 + need_done) % n_e
                pe = pat.elems[ph]
                if cur.label in pe.labels:
                    st.pending.append(_Pending(pat, len(h) - need_done, ph, cur.start + pe.lo))

    def _check_progress(self, events: list[ProgressEvent], now: float) -> None:
        st = self._st
        cur = st.cur
        if cur is None:
            return
        lk = st.lock
        if lk is not None:
            if cur.dur > lk.pat.elems[lk.phase].hi:  # this element runs too long: the cadence stopped
                events.append(ProgressEvent(lk.pat.kind, lk.start_pts, round(now), round(cur.start)))
                st.lock = None
            return
        for pnd in st.pending:
            if now >= pnd.due:
                start = self._episode_start(pnd)
                st.lock = _Lock(pnd.pat, pnd.phase, start)
                st.pending.clear()
                events.append(ProgressEvent(pnd.pat.kind, start, round(now)))
                return

    def _episode_start(self, pnd: _Pending) -> int:
        """Walk back from the matched window over earlier segments that fit the pattern."""
        h = self._st.history
        pat = pnd.pat
        n_e = len(pat.elems)
        first = pnd.first
        phase = (pnd.phase - (len(h) - first)) % n_e
        if first >= len(h):  # continuous tone: the window is the running segment itself
            cur = self._st.cur
            assert cur is not None
            return round(cur.start)
        i = first - 1
        while i >= 0:
            phase = (phase - 1) % n_e
            el = h[i]
            pe = pat.elems[phase]
            if el.label not in pe.labels:
                break
            if not (pe.lo <= el.dur <= pe.hi or (el.truncated and el.dur <= pe.hi)):
                break
            first = i
            i -= 1
        # start at the first tone element of the consistent run
        while first < len(h) and h[first].label < 0:
            first += 1
        return round(h[first].start) if first < len(h) else round(self._st.cur.start if self._st.cur else 0)


def _windows(p: _CPattern, r: int) -> list[list[_CElem]]:
    n = len(p.elems)
    return [[p.elems[(s + j) % n] for j in range(r)] for s in range(n) if p.elems[s].is_tone]


def _windows_clash(a: _CPattern, b: _CPattern, r: int) -> bool:
    """Could ``r`` segments matching ``a`` (newest only up to its minimum) come from ``b``?"""
    for wa in _windows(a, r):
        for wb in _windows(b, r):
            ok = True
            for j, (ea, eb) in enumerate(zip(wa, wb, strict=True)):
                if not (ea.labels & eb.labels):
                    ok = False
                    break
                last = j == r - 1
                if last:
                    if eb.hi < ea.lo:
                        ok = False
                        break
                elif eb.hi < ea.lo or ea.hi < eb.lo:
                    ok = False
                    break
            if ok:
                return True
    return False
