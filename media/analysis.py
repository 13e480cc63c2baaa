"""Offline analysis of a recording (``gatewayd analyze``): levels, silence, DTMF, call progress, caller ID.

The file is read as 8 kHz mono (any PCM/float/G.711 WAV; :func:`media.wav.read_wav`) and pushed
through a list of *analysers* in 20 ms :class:`~media.frame.AudioFrame` s — the same detectors a live
leg runs, fed the same way. Each analyser owns one key of the JSON report and its lines of the text
report. More analysers (call-progress tones, caller ID) plug in by appending a factory to
:data:`ANALYSERS`::

    class ProgressAnalyser:
        key = "progress"
        def __init__(self, options: AnalysisOptions) -> None: ...
        def process(self, frame: AudioFrame) -> None: ...
        def finish(self, duration: float) -> object: ...      # JSON-serialisable
        def describe(self, result: object) -> list[str]: ...  # human-readable lines

    ANALYSERS.append(ProgressAnalyser)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from media.dtmf import DtmfDetector, DtmfEvent
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples, frames
from media.levels import FLOOR_DB, FULL_SCALE, threshold_to_dbov
from media.line_analysis import CallerIdAnalyser, ProgressAnalyser
from media.silence import DEFAULT_THRESHOLD
from media.wav import read_info, read_wav

FORMAT_NAMES = {0x0001: "PCM", 0x0003: "IEEE float", 0x0006: "A-law", 0x0007: "µ-law", 0xFFFE: "extensible"}


@dataclass(frozen=True)
class AnalysisOptions:
    threshold: float = DEFAULT_THRESHOLD  # SilenceThreshold (mean |x| of a 20 ms frame)
    min_silence: float = 0.5  # seconds: shorter silent runs are not listed as spans
    country: str = "us"  # call-progress tone plan
    cid_standard: str | None = None  # "bell202" / "v23"; None: try both


class Analyser(Protocol):
    key: str

    def process(self, frame: AudioFrame) -> None: ...

    def finish(self, duration: float) -> Any: ...

    def describe(self, result: Any) -> list[str]: ...


AnalyserFactory = Callable[[AnalysisOptions], Analyser]


def _sec(samples: int) -> float:
    return round(samples / SAMPLE_RATE, 3)


def _db(power: float) -> float:
    return round(max(10 * math.log10(power / FULL_SCALE ** 2), FLOOR_DB), 1) if power > 0 else FLOOR_DB


class LevelAnalyser:
    """Level of each second (and of the whole file) in dBov."""

    key = "levels"

    def __init__(self, options: AnalysisOptions) -> None:
        self._sums: list[float] = []
        self._counts: list[int] = []
        self._peak = 0

    def process(self, frame: AudioFrame) -> None:
        x = frame.samples.astype(np.float64)
        sec = frame.pts // SAMPLE_RATE
        split = min((sec + 1) * SAMPLE_RATE - frame.pts, x.shape[0])  # a frame may straddle a second
        for s, part in ((sec, x[:split]), (sec + 1, x[split:])):
            if part.shape[0] == 0:
                continue
            while len(self._sums) <= s:
                self._sums.append(0.0)
                self._counts.append(0)
            self._sums[s] += float(part @ part)
            self._counts[s] += part.shape[0]
        self._peak = max(self._peak, int(np.abs(frame.samples.astype(np.int32)).max(initial=0)))

    def finish(self, duration: float) -> Any:
        per = [{"start": float(i), "end": min(float(i + 1), duration), "dbov": _db(s / n)}
               for i, (s, n) in enumerate(zip(self._sums, self._counts, strict=True)) if n]
        total_n = sum(self._counts)
        overall = _db(sum(self._sums) / total_n) if total_n else FLOOR_DB
        return {"overall_dbov": overall, "peak": self._peak, "per_second": per}

    def describe(self, result: Any) -> list[str]:
        lines = [f"levels: overall {result['overall_dbov']:.1f} dBov, peak {result['peak']} "
                 f"({_db(result['peak'] ** 2):.1f} dBFS)"]
        for p in result["per_second"]:
            bar = "#" * max(0, int((p["dbov"] + 70) / 2))
            lines.append(f"  {p['start']:7.0f} s {p['dbov']:7.1f} dBov  {bar}")
        return lines


class SilenceAnalyser:
    """Silent runs of 20 ms frames at SilenceThreshold, as RecordAudio would see them."""

    key = "silence"

    def __init__(self, options: AnalysisOptions) -> None:
        self.threshold = options.threshold
        self.min_silence = options.min_silence
        self._means: list[float] = []
        self._spans: list[tuple[int, int]] = []
        self._run_start: int | None = None
        self._end = 0

    def process(self, frame: AudioFrame) -> None:
        total = int(np.abs(frame.samples, dtype=np.int32).sum())
        self._means.append(total / frame.duration_samples)
        self._end = frame.end_pts
        if total < self.threshold * frame.duration_samples:
            if self._run_start is None:
                self._run_start = frame.pts
        elif self._run_start is not None:
            self._spans.append((self._run_start, frame.pts))
            self._run_start = None

    def finish(self, duration: float) -> Any:
        if self._run_start is not None:
            self._spans.append((self._run_start, self._end))
            self._run_start = None
        end = round(duration * SAMPLE_RATE)
        spans = [{"start": _sec(a), "end": _sec(min(b, end))} for a, b in self._spans
                 if (min(b, end) - a) >= self.min_silence * SAMPLE_RATE]
        m = np.asarray(self._means) if self._means else np.zeros(1)
        silent = sum(min(b, end) - a for a, b in self._spans)
        return {
            "threshold": self.threshold,
            "threshold_dbov": round(threshold_to_dbov(self.threshold), 1),
            "min_duration": self.min_silence,
            "silent_fraction": round(silent / end, 3) if end else 0.0,
            "frame_mean_abs": {k: round(float(v), 1) for k, v in
                               zip(("min", "p10", "median", "p90", "max"),
                                   np.percentile(m, [0, 10, 50, 90, 100]), strict=True)},
            "spans": spans,
        }

    def describe(self, result: Any) -> list[str]:
        fm = result["frame_mean_abs"]
        lines = [f"silence: threshold {result['threshold']:g} (≈ {result['threshold_dbov']:.1f} dBov), "
                 f"{100 * result['silent_fraction']:.0f} % of frames silent; frame mean|x| min {fm['min']:g}, "
                 f"median {fm['median']:g}, p90 {fm['p90']:g}, max {fm['max']:g}",
                 f"  {len(result['spans'])} span(s) of at least {result['min_duration']:g} s"]
        lines += [f"  {s['start']:9.3f} – {s['end']:9.3f} s  ({s['end'] - s['start']:.3f} s)" for s in result["spans"]]
        return lines


class DtmfAnalyser:
    """DTMF key presses."""

    key = "dtmf"

    def __init__(self, options: AnalysisOptions) -> None:
        self._det = DtmfDetector()
        self._events: list[DtmfEvent] = []

    def process(self, frame: AudioFrame) -> None:
        self._events += self._det.process(frame)

    def finish(self, duration: float) -> Any:
        self._events += self._det.flush()
        return [{"digit": e.digit, "start": _sec(e.start), "end": _sec(e.end),
                 "level_dbm0": round(e.level_dbm0, 1), "twist_db": round(e.twist_db, 1)} for e in self._events]

    def describe(self, result: Any) -> list[str]:
        lines = [f"dtmf: {len(result)} digit(s)" + (f": {''.join(d['digit'] for d in result)}" if result else "")]
        lines += [f"  {d['digit']}  {d['start']:9.3f} – {d['end']:9.3f} s  {d['level_dbm0']:6.1f} dBm0  "
                  f"twist {d['twist_db']:+.1f} dB" for d in result]
        return lines


ANALYSERS: list[AnalyserFactory] = [LevelAnalyser, SilenceAnalyser, DtmfAnalyser, ProgressAnalyser, CallerIdAnalyser]


@dataclass
class Report:
    duration: float
    source: dict[str, Any] = field(default_factory=dict)
    sections: list[tuple[Analyser, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.source, "sample_rate": SAMPLE_RATE, "duration": self.duration}
        for a, result in self.sections:
            out[a.key] = result
        return out

    def to_text(self) -> str:
        src = self.source
        head = f"{src.get('file', '<samples>')}: {self.duration:.3f} s"
        if "format" in src:
            head += (f" ({src['format']} {src['bits_per_sample']}-bit, {src['source_rate']} Hz, "
                     f"{src['channels']} ch; analysed as {SAMPLE_RATE} Hz mono)")
        lines = [head]
        for a, result in self.sections:
            lines += a.describe(result)
        return "\n".join(lines) + "\n"


def analyse(samples: Samples, options: AnalysisOptions | None = None,
            analysers: Sequence[AnalyserFactory] | None = None) -> Report:
    """Run every analyser over 8 kHz mono samples, in 20 ms frames."""
    opts = options or AnalysisOptions()
    active = [f(opts) for f in (ANALYSERS if analysers is None else analysers)]
    n = samples.shape[0]
    for fr in frames(samples, pad=False):
        for a in active:
            a.process(fr)
    tail = n % FRAME_SAMPLES
    if tail:
        last = AudioFrame(np.ascontiguousarray(samples[n - tail:]), n - tail)
        for a in active:
            a.process(last)
    duration = round(n / SAMPLE_RATE, 3)
    return Report(duration, {}, [(a, a.finish(duration)) for a in active])


def analyse_file(path: str | os.PathLike[str], options: AnalysisOptions | None = None,
                 analysers: Sequence[AnalyserFactory] | None = None) -> Report:
    """Read a WAV file (raises :class:`media.wav.WavError` with a clear message) and analyse it."""
    samples = read_wav(path)
    info = read_info(path)
    report = analyse(samples, options, analysers)
    report.source = {"file": str(Path(path)), "format": FORMAT_NAMES.get(info.format_tag, hex(info.format_tag)),
                     "bits_per_sample": info.bits_per_sample, "source_rate": info.sample_rate,
                     "channels": info.channels}
    return report
