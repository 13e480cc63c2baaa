"""``gatewayd analyze FILE.wav --plot OUT.png``: the analysis drawn over the recording (matplotlib).

matplotlib comes with the ``[plot]`` extra and is imported here only, when a plot is asked for;
:func:`require_matplotlib` says clearly when it is missing. The figure is drawn with the Agg canvas
(no display, no pyplot state).

Two panels over one time axis (seconds):

* the waveform (full scale ±1);
* the level of each 20 ms frame in dBov on the SilenceThreshold scale — the frame's mean |x| mapped
  with :func:`media.levels.threshold_to_dbov`, the same mapping as the threshold — so a frame is
  under the dashed threshold line exactly when silence detection calls it silent.

On both: silence spans shaded grey; DTMF key presses shaded with their digit written above;
call-progress tones (from where they began to where they stopped, a dotted line where the detector
decided) and caller-ID messages (number/name) marked with their own colours and labels.

:func:`plot_data` computes every series and mark (:class:`PlotData`) and :func:`build_figure` only
draws that, so tests check the data the plot shows against the analysis. Every artist also carries a
``gid`` (``waveform``, ``frame-level``, ``threshold``, ``silence``, ``dtmf``, ``dtmf-label``,
``progress``, ``progress-label``, ``progress-detected``, ``cid``, ``cid-label``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from media.frame import FRAME_SAMPLES, SAMPLE_RATE, Samples
from media.levels import FULL_SCALE, NOISE_RMS_PER_MEAN_ABS, threshold_to_dbov
from media.silence import frame_mean_abs

DPI = 100
DEFAULT_SIZE_PX = (1200, 600)
MIN_SIZE_PX = (300, 200)  # smaller leaves no room for the axes' labels
MAX_SIZE_PX = (10000, 10000)
LEVEL_FLOOR_DBOV = -90.0  # frames quieter than this (digital silence) are drawn at it


class PlotUnavailable(Exception):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    try:
        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401
    except ImportError as e:
        raise PlotUnavailable("--plot needs matplotlib: install the plot extra (pip install 'gatewayd[plot]')") \
            from e


def frame_levels(samples: Samples) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(frame start times in s, level in dBov on the SilenceThreshold scale) of each whole 20 ms frame."""
    ma = frame_mean_abs(samples)
    t = np.arange(len(ma)) * (FRAME_SAMPLES / SAMPLE_RATE)
    lv: npt.NDArray[np.float64] = 20 * np.log10(np.maximum(ma, 1e-9) * NOISE_RMS_PER_MEAN_ABS / FULL_SCALE)
    return t.astype(np.float64), np.maximum(lv, LEVEL_FLOOR_DBOV)  # lv = threshold_to_dbov(ma)


@dataclass(frozen=True)
class Span:
    start: float  # seconds
    end: float
    label: str = ""  # the digit, tone kind or caller ID text; "" for silence


@dataclass(frozen=True)
class PlotData:
    """Everything :func:`build_figure` draws, computed from the samples and the analysis report."""

    duration: float  # seconds
    wave_t: npt.NDArray[np.float64]  # seconds (decimated for a long file: drawing only)
    wave: npt.NDArray[np.float64]  # full scale ±1
    frame_t: npt.NDArray[np.float64]  # start of each whole 20 ms frame, seconds
    frame_level: npt.NDArray[np.float64]  # dBov on the SilenceThreshold scale (:func:`frame_levels`)
    threshold: float | None  # SilenceThreshold, when the report has a silence section
    threshold_dbov: float | None
    silence: list[Span] = field(default_factory=list)
    dtmf: list[Span] = field(default_factory=list)  # label: the digit
    progress: list[Span] = field(default_factory=list)  # label: the tone kind
    progress_detected: list[float] = field(default_factory=list)  # where the detector decided
    cid: list[Span] = field(default_factory=list)  # caller-ID messages (label: number/name) and DT-AS


def plot_data(samples: Samples, report: dict[str, Any]) -> PlotData:
    """The series and marks of the plot for 8 kHz samples and their analysis (``Report.to_json()``:
    ``silence.threshold`` and ``silence.spans``, ``dtmf``, ``call_progress``, ``caller_id`` are used
    when present)."""
    duration = len(samples) / SAMPLE_RATE
    step = max(1, len(samples) // 200_000)  # a long file is decimated for drawing only
    wave_t = np.arange(0, len(samples), step) / SAMPLE_RATE
    wave = samples[::step].astype(np.float64) / FULL_SCALE
    ft, lv = frame_levels(samples)
    silence = report.get("silence") or {}
    thr = float(silence["threshold"]) if "threshold" in silence else None
    progress: list[Span] = []
    detected: list[float] = []
    for e in (report.get("call_progress") or {}).get("events", []):
        progress.append(Span(e["start"], duration if e["end"] is None else e["end"], e["kind"]))
        detected.append(e["detected"])
    cid_sec = report.get("caller_id") or {}
    cid: list[Span] = []
    for m in cid_sec.get("messages", []):
        who = " ".join(x for x in (m.get("number") or "", m.get("name") or "") if x) or "caller ID"
        cid.append(Span(m["start"], m["end"], f"CID {who}" + (f" ({m['error']})" if m.get("error") else "")))
    cid += [Span(a["start"], a["end"], "DT-AS") for a in cid_sec.get("dtas", [])]
    return PlotData(
        duration=duration, wave_t=wave_t, wave=wave, frame_t=ft, frame_level=lv, threshold=thr,
        threshold_dbov=threshold_to_dbov(thr) if thr is not None else None,
        silence=[Span(s["start"], s["end"]) for s in silence.get("spans", [])],
        dtmf=[Span(d["start"], d["end"], d["digit"]) for d in report.get("dtmf", [])],
        progress=progress, progress_detected=detected, cid=cid)


def build_figure(data: PlotData, title: str = "", size_px: tuple[int, int] = DEFAULT_SIZE_PX) -> Any:
    """The figure (matplotlib ``Figure`` on an Agg canvas, ``size_px`` pixels at :data:`DPI`) drawing ``data``."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    wave_ax, level_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.4]})
    wave_ax.plot(data.wave_t, data.wave, lw=0.4, color="tab:blue", gid="waveform")
    wave_ax.set_ylim(-1.05, 1.05)
    wave_ax.set_ylabel("waveform (full scale)")
    ft, lv = data.frame_t, data.frame_level
    if len(ft):  # one more point so that the last frame is drawn to its end
        ft, lv = np.append(ft, ft[-1] + FRAME_SAMPLES / SAMPLE_RATE), np.append(lv, lv[-1])
    level_ax.step(ft, lv, where="post", lw=0.8, color="tab:blue", gid="frame-level")
    level_ax.set_ylabel("frame level, dBov\n(mean |x| scale)")
    level_ax.set_xlabel("time (s)")
    level_ax.set_ylim(LEVEL_FLOOR_DBOV - 2, 3)
    level_ax.set_xlim(0, max(data.duration, 0.02))

    if data.threshold is not None and data.threshold_dbov is not None:
        level_ax.axhline(data.threshold_dbov, ls="--", lw=1.0, color="tab:red", gid="threshold",
                         label=f"SilenceThreshold {data.threshold:g} (≈ {data.threshold_dbov:.1f} dBov)")
    for span in data.silence:
        for ax in (wave_ax, level_ax):
            ax.axvspan(span.start, span.end, color="0.85", zorder=0, gid="silence")
    top = level_ax.get_ylim()[1]
    for d in data.dtmf:
        for ax in (wave_ax, level_ax):
            ax.axvspan(d.start, d.end, color="tab:orange", alpha=0.35, zorder=0, gid="dtmf")
        level_ax.text((d.start + d.end) / 2, top - 1, d.label, ha="center", va="top", fontsize=9,
                      color="tab:orange", fontweight="bold", gid="dtmf-label")
    for p in data.progress:
        for ax in (wave_ax, level_ax):
            ax.axvspan(p.start, p.end, color="tab:green", alpha=0.15, zorder=0, gid="progress")
        level_ax.text(p.start, LEVEL_FLOOR_DBOV, f" {p.label}", ha="left", va="bottom", fontsize=8,
                      color="tab:green", gid="progress-label")
    for x in data.progress_detected:
        level_ax.axvline(x, ls=":", color="tab:green", lw=1.0, gid="progress-detected")
    for c in data.cid:
        for ax in (wave_ax, level_ax):
            ax.axvspan(c.start, c.end, color="tab:purple", alpha=0.2, zorder=0, gid="cid")
        level_ax.text(c.start, LEVEL_FLOOR_DBOV + 8, f" {c.label}", ha="left", va="bottom", fontsize=8,
                      color="tab:purple", gid="cid-label")

    if level_ax.get_legend_handles_labels()[0]:
        level_ax.legend(loc="lower right", fontsize=8)
    if title:
        wave_ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def save_plot(samples: Samples, report: dict[str, Any], path: str | os.PathLike[str], title: str = "",
              size_px: tuple[int, int] = DEFAULT_SIZE_PX) -> PlotData:
    """Draw the plot of ``samples`` and their analysis into a PNG file of ``size_px`` pixels; returns
    what was drawn (:func:`plot_data`)."""
    data = plot_data(samples, report)
    fig = build_figure(data, title, size_px)
    fig.savefig(os.fspath(path), format="png", dpi=DPI)
    return data
