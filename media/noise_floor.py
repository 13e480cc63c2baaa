"""A line's idle noise floor and the SilenceThreshold it calls for (``gatewayd levels``).

:func:`measure_floor` takes a recording of a line that is meant to be quiet (an idle analog line
off-hook, or a call whose caller says nothing) and tells apart what is *not* the floor:

* **call-progress tones** and **DTMF** — found by the same detectors ``gatewayd analyze`` runs
  (:func:`media.analysis.analyse` with the progress and DTMF analysers); their spans, plus a guard
  of ``guard_s`` either side, are left out and listed. A dial tone is the usual case: an analog line
  taken off-hook gives dial tone first, and a dial tone is not the noise floor;
* **all-zero frames** — filler a driver pushes while the device has no audio (a modem between
  off-hook and receive), unless most of the recording is digital silence (then that *is* the floor);
* **activity** — frames more than ``activity_db`` above the 10th percentile of what is left
  (clicks, crackle, a caller who spoke). They would count as voice at any threshold worth having,
  so they are counted and reported, not averaged into the floor.

What remains are the *idle frames*. Their per-frame statistics (dBov and mean |x|, from
:func:`media.silence.frame_dbov` / :func:`media.silence.frame_mean_abs`: min, p10, median, p90,
max) and their power average (the floor, dBov) are reported, with the mains hum found in them
(50 or 60 Hz and harmonics, from an averaged spectrum).

**The suggestion.** ``T = p90(mean |x| of idle frames) · 10^(margin_db/20)``, rounded and clamped
to SilenceThreshold's range [1, 1000]: with the default 6 dB margin nine idle frames in ten sit at
least 6 dB under ``T`` (and in practice all of them: the spread of a stationary floor is about ±1 dB
per 20 ms frame). The statistic is the one silence detection uses (SPEC.md §4), measured on this
line, so the suggestion holds for noise, hum or any mix of them; ``threshold_dbov`` says what level
``T`` corresponds to for noise (:func:`media.levels.threshold_to_dbov`).

When a dial tone covers so much of the recording that fewer than ``min_idle_s`` of idle frames are
left, the floor *under* the dial tone is estimated from the spectrum with the tone's lines cut out
(:func:`floor_under_tone`) and the suggestion is based on it (``basis`` ``under-dial-tone``,
assuming a noise-like floor). On a G.711 line that estimate includes the quantisation noise the tone
itself causes (about 38 dB under the tone: near -54 dBov under a -10 dBm0 dial tone), so under a loud
tone it reads high and the suggestion errs on the safe side (a higher threshold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from media.analysis import AnalysisOptions, DtmfAnalyser, analyse
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, Samples
from media.levels import FLOOR_DB, FULL_SCALE, SINE_DBOV_OFFSET, dbov, dbov_to_threshold, threshold_to_dbov
from media.line_analysis import ProgressAnalyser
from media.progress import ToneKind
from media.progress import country as tone_plan
from media.silence import frame_dbov, frame_mean_abs

__all__ = ["FloorOptions", "FloorReport", "find_hum", "floor_under_tone", "measure_floor"]

THRESHOLD_MIN, THRESHOLD_MAX = 1, 1000  # SilenceThreshold's range in RecordAudio
NOMINAL_SPEECH_DBOV = -26.0  # P.56-normalised speech (CHIME-NOTES §5)
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
STAT_KEYS = ("min", "p10", "median", "p90", "max")


@dataclass(frozen=True)
class FloorOptions:
    country: str = "us"  # call-progress tone plan (which dial tone to expect)
    margin_db: float = 6.0  # the suggestion: this far above the p90 of the idle frames' mean |x|
    activity_db: float = 10.0  # frames this far above the idle p10 are activity, not floor
    guard_s: float = 0.06  # left out either side of a tone or digit
    min_idle_s: float = 1.0  # fewer idle frames than this: no floor from them


@dataclass
class FloorReport:
    duration: float  # seconds analysed
    frames: int
    options: FloorOptions
    tones: list[dict[str, Any]] = field(default_factory=list)  # {kind, start, end} call-progress tones
    dtmf: list[dict[str, Any]] = field(default_factory=list)  # {digit, start, end}
    excluded_frames: int = 0  # inside a tone or digit (with the guard)
    zero_frames: int = 0  # all-zero frames left out (driver filler)
    activity_frames: int = 0
    idle_frames: int = 0
    level_dbov: dict[str, float] | None = None  # per-frame dBov of the idle frames: min, p10, median, p90, max
    mean_abs: dict[str, float] | None = None  # per-frame mean |x| of the idle frames
    floor_dbov: float | None = None  # power average of the idle frames

    @property
    def floor_dbm0(self) -> float | None:
        """The floor in dBm0 (same power: dBm0 = dBov + 6.15 for any signal, RMS-based)."""
        return None if self.floor_dbov is None else round(self.floor_dbov + SINE_DBOV_OFFSET, 2)
    under_tone: dict[str, Any] | None = None  # {kind, start, end, floor_dbov} floor estimated under a dial tone
    hum: dict[str, Any] | None = None
    suggestion: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def idle_seconds(self) -> float:
        return round(self.idle_frames * FRAME_S, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "duration": self.duration, "frames": self.frames, "tones": self.tones, "dtmf": self.dtmf,
            "frames_excluded": {"tone_or_digit": self.excluded_frames, "all_zero": self.zero_frames,
                                "activity": self.activity_frames},
            "idle": {"frames": self.idle_frames, "seconds": self.idle_seconds, "level_dbov": self.level_dbov,
                     "mean_abs": self.mean_abs, "floor_dbov": self.floor_dbov,
                     "floor_dbm0": self.floor_dbm0},
            "under_tone": self.under_tone, "hum": self.hum, "suggestion": self.suggestion, "notes": self.notes,
        }

    def to_text(self) -> str:
        lines: list[str] = []
        for t in self.tones:
            end = "the end" if t["end"] is None else f"{t['end']:.2f} s"
            what = "a dial tone is not the noise floor" if t["kind"] == "dial" else "not the noise floor"
            lines.append(f"{t['kind']} tone {t['start']:.2f} s – {end}: left out ({what})")
        if self.dtmf:
            lines.append(f"DTMF {''.join(d['digit'] for d in self.dtmf)} at "
                         + ", ".join(f"{d['start']:.2f} s" for d in self.dtmf) + ": left out")
        lines.append(f"idle frames: {self.idle_frames} of {self.frames} ({self.idle_seconds:.2f} s); left out: "
                     f"{self.excluded_frames} in tones/digits, {self.activity_frames} of activity above the floor, "
                     f"{self.zero_frames} all-zero")
        if self.level_dbov is not None and self.mean_abs is not None:
            lines.append("frame level    " + "".join(f"{k:>9}" for k in STAT_KEYS))
            lines.append("  dBov         " + "".join(f"{self.level_dbov[k]:9.1f}" for k in STAT_KEYS))
            lines.append("  mean |x|     " + "".join(f"{self.mean_abs[k]:9.1f}" for k in STAT_KEYS))
            lines.append(f"noise floor: {self.floor_dbov:.1f} dBov = {self.floor_dbm0:.1f} dBm0 (power average of "
                         "the idle frames)")
        if self.under_tone is not None:
            u = self.under_tone
            lines.append(f"floor under the {u['kind']} tone ({u['start']:.2f}–{u['end']:.2f} s, tone cut out of the "
                         f"spectrum): {u['floor_dbov']:.1f} dBov")
        if self.hum is not None:
            h = self.hum
            parts = ", ".join(f"{c['hz']:g} Hz {c['dbov']:.1f}" for c in h["harmonics"])
            mains = f"{h['mains_hz']} Hz" if h["mains_hz"] else "50 or 60 Hz"
            lines.append(f"hum: {mains} mains, {h['dbov']:.1f} dBov in all "
                         f"({100 * h['share']:.0f} % of the floor's power): {parts}")
        else:
            lines.append("hum: none found")
        s = self.suggestion
        if s is None:
            lines.append("suggested SilenceThreshold: none (no idle audio to measure)")
        else:
            lines.append(f"suggested SilenceThreshold: {s['threshold']} (≈ {s['threshold_dbov']:.1f} dBov for noise)")
            lines.append(f"  because: {s['reasoning']}")
            lines.append(f"  at {s['threshold']}: {100 * s['idle_silent_fraction']:.1f} % of the idle frames are "
                         f"silent; nominal speech ({NOMINAL_SPEECH_DBOV:.0f} dBov) is {s['speech_headroom_db']:.1f} dB "
                         "above it")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _stats(x: npt.NDArray[np.float64]) -> dict[str, float]:
    return {k: round(float(v), 1) for k, v in zip(STAT_KEYS, np.percentile(x, [0, 10, 50, 90, 100]), strict=True)}


def _db(power: float) -> float:
    return round(10 * math.log10(power / FULL_SCALE ** 2), 2) if power > 0 else FLOOR_DB


def _frame_range(start: float, end: float, guard: float, n: int) -> tuple[int, int]:
    a = max(0, math.floor((start - guard) / FRAME_S))
    b = min(n, math.ceil((end + guard) / FRAME_S))
    return a, b


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, end) frame indices of the runs of True."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def measure_floor(samples: Samples, options: FloorOptions | None = None) -> FloorReport:
    """The floor of a recording of a quiet line (8 kHz mono int16); see the module docstring."""
    opts = options or FloorOptions()
    n = samples.shape[0] // FRAME_SAMPLES
    x = np.ascontiguousarray(samples[:n * FRAME_SAMPLES])
    duration = round(n * FRAME_S, 3)
    rep = FloorReport(duration=duration, frames=n, options=opts)
    if n == 0:
        rep.notes.append("no audio")
        return rep
    found = analyse(x, AnalysisOptions(country=opts.country), [ProgressAnalyser, DtmfAnalyser]).to_json()
    excluded = np.zeros(n, dtype=bool)
    for e in found["call_progress"]["events"]:
        rep.tones.append({"kind": e["kind"], "start": e["start"], "end": e["end"]})
        a, b = _frame_range(e["start"], duration if e["end"] is None else e["end"], opts.guard_s, n)
        excluded[a:b] = True
    for d in found["dtmf"]:
        rep.dtmf.append({"digit": d["digit"], "start": d["start"], "end": d["end"]})
        a, b = _frame_range(d["start"], d["end"], opts.guard_s, n)
        excluded[a:b] = True
    rep.excluded_frames = int(excluded.sum())
    ma = frame_mean_abs(x)
    lv = frame_dbov(x)
    zero = ma == 0
    if zero.sum() * 2 < n:  # filler, not line audio (a digitally silent line keeps its zeros)
        rep.zero_frames = int((zero & ~excluded).sum())
        candidate = ~excluded & ~zero
    else:
        candidate = ~excluded
    idle = candidate.copy()
    if candidate.any():
        ref = float(np.percentile(lv[candidate], 10))
        idle &= lv <= ref + opts.activity_db
        rep.activity_frames = int((candidate & ~idle).sum())
    rep.idle_frames = int(idle.sum())
    if rep.idle_frames:
        rep.level_dbov = _stats(lv[idle])
        rep.mean_abs = _stats(ma[idle])
        rep.floor_dbov = round(dbov(x.reshape(n, FRAME_SAMPLES)[idle]), 2)
        runs = [x[a * FRAME_SAMPLES:b * FRAME_SAMPLES] for a, b in _runs(idle)]
        rep.hum = find_hum(runs, floor_power=float(np.mean(x.reshape(n, FRAME_SAMPLES)[idle].astype(np.float64) ** 2)))
    dial = [t for t in rep.tones if t["kind"] == ToneKind.DIAL.value]
    if dial:
        t = max(dial, key=lambda t: (duration if t["end"] is None else t["end"]) - t["start"])
        end = duration if t["end"] is None else t["end"]
        a, b = _frame_range(t["start"], end, -opts.guard_s, n)
        if (b - a) * FRAME_S >= 1.0:
            segs = tone_plan(opts.country).pattern(ToneKind.DIAL).segments
            freqs = sorted({f for seg in segs for fs in (seg.freqs, *seg.alternatives) for f in fs})
            est = floor_under_tone(x[a * FRAME_SAMPLES:b * FRAME_SAMPLES], freqs)
            rep.under_tone = {"kind": "dial", "start": t["start"], "end": t["end"], "floor_dbov": est}
    _suggest(rep, ma, idle)
    return rep


def _suggest(rep: FloorReport, ma: npt.NDArray[np.float64], idle: npt.NDArray[np.bool_]) -> None:
    opts = rep.options
    gain = 10 ** (opts.margin_db / 20)
    if rep.idle_frames * FRAME_S >= opts.min_idle_s and rep.mean_abs is not None:
        p90 = float(np.percentile(ma[idle], 90))
        raw = p90 * gain
        basis = "idle"
        why = (f"p90 of the idle frames' mean |x| is {p90:.1f} (≈ {threshold_to_dbov(max(p90, 1e-9)):.1f} dBov), "
               f"plus a {opts.margin_db:g} dB margin = {raw:.1f}")
    elif rep.under_tone is not None and rep.under_tone["floor_dbov"] > FLOOR_DB:
        est = rep.under_tone["floor_dbov"]
        base = dbov_to_threshold(est)
        raw = base * gain
        basis = "under-dial-tone"
        why = (f"only {rep.idle_seconds:.2f} s of idle audio outside the dial tone; the floor under the dial tone, "
               f"{est:.1f} dBov, is a mean |x| of {base:.1f} for noise, plus a {opts.margin_db:g} dB margin = "
               f"{raw:.1f}")
        rep.notes.append("the suggestion rests on an estimate under the dial tone: measure again with --on-call "
                         "(call the line and stay silent) or with more seconds to confirm it")
    else:
        rep.notes.append(f"fewer than {opts.min_idle_s:g} s of idle audio: no floor, no suggestion")
        return
    rounded = math.floor(raw + 0.5)
    t = int(min(max(rounded, THRESHOLD_MIN), THRESHOLD_MAX))
    clamped = t != rounded
    if clamped:
        why += f", clamped to [{THRESHOLD_MIN}, {THRESHOLD_MAX}]"
    else:
        why += f", rounded to {t}"
    silent = float(np.mean(ma[idle] < t)) if rep.idle_frames else 0.0
    t_dbov = threshold_to_dbov(t)
    headroom = NOMINAL_SPEECH_DBOV - t_dbov
    rep.suggestion = {"threshold": t, "threshold_dbov": round(t_dbov, 1), "basis": basis, "margin_db": opts.margin_db,
                      "raw": round(raw, 1), "clamped": clamped, "idle_silent_fraction": round(silent, 4),
                      "speech_headroom_db": round(headroom, 1), "reasoning": why}
    if raw > THRESHOLD_MAX:
        rep.notes.append(f"the line is too noisy for silence detection: even SilenceThreshold {THRESHOLD_MAX} leaves "
                         f"idle frames voiced; find the noise (hum: a ground loop, the power supply) before relying "
                         f"on silence")
    elif headroom < 12:
        rep.notes.append(f"SilenceThreshold {t} is only {headroom:.1f} dB under nominal speech: quiet talkers may be "
                         f"taken for silence")
    if rep.mean_abs is not None and rep.mean_abs["p90"] < 8:
        rep.notes.append("the idle line is (almost) digitally silent: any threshold above the codec's idle pattern "
                         "silences it; a real caller's room noise will be louder than this floor")


def find_hum(runs: Sequence[Samples], floor_power: float, *, max_hz: float = 3400.0,
             min_snr_db: float = 10.0, min_segments: int = 8) -> dict[str, Any] | None:
    """Mains hum in quiet audio: 50 or 60 Hz and harmonics standing ``min_snr_db`` above the noise
    around them in a spectrum averaged over ``runs`` (Welch, at least ``min_segments`` half-overlapping
    segments: 2 Hz bins from about 2.5 s of audio in runs of 0.5 s or more, else 5 Hz bins; less
    audio than that gives None).

    Returns ``{mains_hz, dbov, share, harmonics: [{hz, dbov}]}`` (``share``: hum power / floor power)
    or None when no harmonic of either mains frequency stands out."""
    from scipy.signal import welch  # scipy is a core dependency; imported where used

    def segments(nper: int) -> int:
        return sum(1 + (len(r) - nper) // (nper // 2) for r in runs if len(r) >= nper)

    # 2 Hz bins when there is audio enough for them, else 5 Hz; too few averaged segments and the
    # spectrum's own scatter passes for hum lines somewhere among a hundred harmonics: no verdict
    nper = next((n for n in (4000, 1600) if segments(n) >= min_segments), 0)
    if not nper:
        return None
    psd: npt.NDArray[np.float64] | None = None
    weight = 0
    freqs: npt.NDArray[np.float64] = np.zeros(0)
    for r in runs:
        if len(r) < nper:
            continue
        freqs, p = welch(np.asarray(r, dtype=np.float64), fs=SAMPLE_RATE, window="hann", nperseg=nper,
                         noverlap=nper // 2, detrend=False)
        segs = 1 + (len(r) - nper) // (nper // 2)
        psd = p * segs if psd is None else psd + p * segs
        weight += segs
    if psd is None:
        return None
    psd = psd / weight
    df = float(freqs[1] - freqs[0])
    best: tuple[int, float, int, list[dict[str, float]]] | None = None
    for mains in (50, 60):
        found: list[dict[str, float]] = []
        power = 0.0
        own = 0  # harmonics that are not also harmonics of the other mains frequency
        for k in range(1, int(max_hz // mains) + 1):
            fk = k * mains
            i = round(fk / df)
            if i < 3 or i + 3 >= len(psd):
                continue
            lobe = psd[i - 2:i + 3]
            dist = np.abs(freqs - fk)
            around = psd[(dist >= 6 * df) & (dist <= 25 + 6 * df)]
            noise = float(np.median(around)) if around.size else 0.0
            if noise <= 0 or float(lobe.max()) < noise * 10 ** (min_snr_db / 10):
                continue
            pw = max(float(lobe.sum()) - 5 * noise, 0.0) * df
            found.append({"hz": float(fk), "dbov": _db(pw)})
            power += pw
            if fk % 300:
                own += 1
        key = (own, power)
        if found and (best is None or key > (best[0], best[1])):
            best = (own, power, mains, found)
    if best is None:
        return None
    own, power, mains, found = best
    # mains_hz None: only lines that 50 and 60 Hz share (300 Hz, 600 Hz ...) stand out
    return {"mains_hz": mains if own else None, "dbov": _db(power),
            "share": round(power / floor_power, 3) if floor_power > 0 else 0.0, "harmonics": found}


def floor_under_tone(x: Samples, tone_hz: Sequence[float]) -> float:
    """Level (dBov) of what is under a steady tone: the spectrum (Blackman-Harris, 2 Hz bins) with the
    tone's lines (the strongest bin within ±5 % of each nominal frequency, ±20 Hz around it) replaced
    by the median of the bins next to them, integrated over the band."""
    from scipy.signal import welch

    a = np.asarray(x, dtype=np.float64)
    nper = min(4000, len(a))
    f, p = welch(a, fs=SAMPLE_RATE, window="blackmanharris", nperseg=nper, noverlap=nper // 2, detrend=False)
    df = float(f[1] - f[0])
    cut = np.zeros(len(f), dtype=bool)
    for hz in tone_hz:
        band = (f >= hz * 0.95) & (f <= hz * 1.05)
        if not band.any():
            continue
        peak = float(f[band][np.argmax(p[band])])
        cut |= np.abs(f - peak) <= 20.0
    filled = p.copy()
    for a_, b_ in _runs(cut):
        lo, hi = f[a_] - 60.0, f[b_ - 1] + 60.0
        near = p[(f >= lo) & (f <= hi) & ~cut]
        filled[a_:b_] = float(np.median(near)) if near.size else 0.0
    return _db(float(filled.sum()) * df)
