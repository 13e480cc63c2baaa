"""``gatewayd bench media``: real-time factor of the per-leg media detectors on one core.

Every live leg runs G.711 decoding and the detectors on each 20 ms frame, so their cost per frame
decides how many legs a Pi carries. The benchmark builds a deterministic synthetic call (speech-like
voiced syllables, pauses with line noise, DTMF digits, ringback and busy tones, chords), encodes it
as µ-law 20 ms frames, pins itself to one CPU and times, frame by frame:

* each stage alone (G.711 decode, DTMF, silence, and call progress when ``media.progress`` has a
  ``ProgressDetector``), on the same frames;
* the chain a leg runs: decode + every detector.

It prints the real-time factor (audio seconds per CPU second), mean, p50 and p99 time per frame, and
exits 1 when the chain's real-time factor is below the bound (300× by default).

Adding a stage: append ``(name, factory)`` to :data:`STAGES`; the factory returns a callable that
takes an :class:`~media.frame.AudioFrame` (a fresh detector per run).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from media import g711
from media.dtmf import DtmfDetector, dtmf_tone
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, to_int16
from media.levels import dbm0_to_rms
from media.silence import SilenceDetector
from media.tones import ToneGenerator

log = logging.getLogger(__name__)

DEFAULT_BOUND = 300.0
FrameFn = Callable[[AudioFrame], object]
StageFactory = Callable[[], FrameFn]


def _dtmf() -> FrameFn:
    return DtmfDetector().process


def _silence() -> FrameFn:
    return SilenceDetector.for_duration(200, 3.0).process


def _progress_class() -> Callable[[], Any] | None:
    """media.progress's detector class, if that module (built separately) is present."""
    try:
        mod = importlib.import_module("media.progress")
    except ImportError:
        return None
    cls = getattr(mod, "ProgressDetector", None)
    return cls if callable(cls) else None


def _progress() -> FrameFn:
    cls = _progress_class()
    if cls is None:
        raise RuntimeError("media.progress.ProgressDetector is not available")
    fn: FrameFn = cls().process
    return fn


STAGES: list[tuple[str, StageFactory]] = [("dtmf", _dtmf), ("silence", _silence)]


def stages() -> list[tuple[str, StageFactory]]:
    """The detector stages of the chain (call progress included when media.progress exists)."""
    out = list(STAGES)
    if _progress_class() is not None and not any(name == "progress" for name, _ in out):
        out.append(("progress", _progress))
    return out


# ---------------------------------------------------------------------------------------- the signal
def _speechlike(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """Voiced syllables: gliding F0 (90-240 Hz), harmonics shaped by three moving formants, plus
    breath noise; 150-350 ms syllables with short gaps."""
    out = np.zeros(n)
    pos = 0
    while pos < n:
        m = min(int(rng.uniform(0.15, 0.35) * SAMPLE_RATE), n - pos)
        t = np.arange(m) / SAMPLE_RATE
        f0 = rng.uniform(90, 240) * (1 + rng.uniform(-0.15, 0.15) * t / max(t[-1], 1e-3))
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        formants = [rng.uniform(300, 900), rng.uniform(900, 2300), rng.uniform(2300, 3300)]
        x = np.zeros(m)
        for k in range(1, int(3800 / f0.min())):
            fk = k * float(f0.mean())
            a = sum(np.exp(-((fk - fm) / 120.0) ** 2) * g for fm, g in zip(formants, (1.0, 0.5, 0.25), strict=True))
            x += (a + 0.02) / k ** 0.5 * np.sin(k * phase + rng.uniform(0, 6.3))
        x += rng.normal(0, 0.05, m)
        env = np.sin(np.pi * np.arange(m) / m) ** 0.5
        out[pos:pos + m] = x * env
        pos += m + int(rng.uniform(0.02, 0.12) * SAMPLE_RATE)
    return out


def _level(x: npt.NDArray[np.float64], dbm0: float) -> npt.NDArray[np.float64]:
    r = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return x * (dbm0_to_rms(dbm0) / r) if r > 0 else x


def call_signal(seconds: float, seed: int = 1) -> npt.NDArray[np.int16]:
    """A synthetic call: 60 % speech-like, pauses, digits, ringback, busy, chords; then line noise."""
    rng = np.random.default_rng(seed)
    parts: list[npt.NDArray[np.float64]] = []
    total = int(seconds * SAMPLE_RATE)
    cycle = 0
    while sum(p.shape[0] for p in parts) < total:
        parts.append(_level(_speechlike(rng, 6 * SAMPLE_RATE), -18.0))
        parts.append(np.zeros(SAMPLE_RATE))
        for d in "0123456789*#"[cycle % 3::3]:
            parts += [dtmf_tone(d, 800).astype(np.float64), np.zeros(800)]
        on = ToneGenerator([440.0, 480.0], -19.0).render(2 * SAMPLE_RATE)
        parts += [on, np.zeros(2 * SAMPLE_RATE)]
        for _ in range(2):
            parts += [ToneGenerator([480.0, 620.0], -24.0).render(SAMPLE_RATE // 2), np.zeros(SAMPLE_RATE // 2)]
        chord = ToneGenerator([261.6, 329.6, 392.0, 523.3, 659.3, 784.0], -22.0).render(2 * SAMPLE_RATE)
        parts.append(chord)
        cycle += 1
    x = np.concatenate(parts)[:total]
    x = x + rng.normal(0, dbm0_to_rms(-65.0), x.shape)
    return to_int16(x)


# ---------------------------------------------------------------------------------------- timing
def _stats(per_frame_ns: npt.NDArray[np.int64], audio_s: float) -> dict[str, float]:
    total = float(per_frame_ns.sum()) / 1e9
    return {
        "rtf": round(audio_s / total, 1) if total > 0 else float("inf"),
        "mean_us": round(float(per_frame_ns.mean()) / 1e3, 2),
        "p50_us": round(float(np.percentile(per_frame_ns, 50)) / 1e3, 2),
        "p99_us": round(float(np.percentile(per_frame_ns, 99)) / 1e3, 2),
    }


def _time_stage(fn_factory: Callable[[], Callable[[Any], object]], inputs: list[Any]) -> npt.NDArray[np.int64]:
    fn = fn_factory()
    out = np.empty(len(inputs), dtype=np.int64)
    clock = time.perf_counter_ns
    for i, item in enumerate(inputs):
        t0 = clock()
        fn(item)
        out[i] = clock() - t0
    return out


def _decode(codes: bytes, pts: int) -> AudioFrame:
    return AudioFrame(g711.ulaw_decode(codes), pts)


def run_bench(seconds: float = 60.0, repeat: int = 3, bound: float = DEFAULT_BOUND) -> dict[str, Any]:
    x = call_signal(seconds)
    n = x.shape[0] // FRAME_SAMPLES
    codes = [g711.ulaw_encode(x[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]).tobytes() for i in range(n)]
    audio_s = n * FRAME_SAMPLES / SAMPLE_RATE
    decoded = [_decode(c, i * FRAME_SAMPLES) for i, c in enumerate(codes)]
    chain_stages = stages()
    pts = [i * FRAME_SAMPLES for i in range(n)]

    def decode_factory() -> Callable[[tuple[bytes, int]], object]:
        return lambda item: _decode(*item)

    def chain_factory() -> Callable[[tuple[bytes, int]], object]:
        fns = [f() for _, f in chain_stages]

        def step(item: tuple[bytes, int]) -> None:
            frame = _decode(*item)
            for fn in fns:
                fn(frame)
        return step

    wire = list(zip(codes, pts, strict=True))
    best: dict[str, npt.NDArray[np.int64]] = {}
    gc.collect()
    for _ in range(max(1, repeat)):
        runs: dict[str, npt.NDArray[np.int64]] = {"g711_decode": _time_stage(decode_factory, wire)}
        for name, factory in chain_stages:
            runs[name] = _time_stage(factory, decoded)
        runs["chain"] = _time_stage(chain_factory, wire)
        for k, v in runs.items():
            if k not in best or v.sum() < best[k].sum():
                best[k] = v
    result: dict[str, Any] = {
        "bench": "media",
        "audio_seconds": round(audio_s, 2),
        "frames": n,
        "repeat": repeat,
        "stages": {k: _stats(v, audio_s) for k, v in best.items() if k != "chain"},
        "chain": {**_stats(best["chain"], audio_s), "stages": ["g711_decode", *[s for s, _ in chain_stages]]},
        "bound": {"chain_rtf_min": bound},
    }
    result["ok"] = result["chain"]["rtf"] >= bound
    return result


def _pin(cpu: int | None) -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    target = cpu if cpu is not None else allowed[-1]
    if target not in allowed:
        raise ValueError(f"CPU {target} is not available (allowed: {allowed})")
    os.sched_setaffinity(0, {target})
    return target


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "media", help="real-time factor of G.711 decode, DTMF, silence (and call progress) per 20 ms frame",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the synthetic call (default 60)")
    p.add_argument("--repeat", type=int, default=3, help="runs; the fastest counts (default 3)")
    p.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed one)")
    p.add_argument("--min-rtf", type=float, default=DEFAULT_BOUND,
                   help=f"bound for the chain's real-time factor (default {DEFAULT_BOUND:g})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.repeat < 1:
        sys.stderr.write("gatewayd bench media: --seconds must be positive and --repeat at least 1\n")
        return 64
    saved = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        cpu = _pin(args.cpu)
    except ValueError as e:
        sys.stderr.write(f"gatewayd bench media: {e}\n")
        return 64
    try:
        result = run_bench(args.seconds, args.repeat, args.min_rtf)
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)  # in-process callers (tests) get their CPUs back
    result["cpu"] = cpu
    result["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        w = sys.stdout.write
        w(f"media bench: {result['audio_seconds']:g} s of call audio ({result['frames']} frames of 20 ms), "
          f"CPU {cpu}, load average {' '.join(map(str, result['loadavg']))}, best of {result['repeat']}\n")
        w(f"{'stage':14s} {'x real time':>12s} {'mean us':>9s} {'p50 us':>9s} {'p99 us':>9s}\n")
        for name, s in [*result["stages"].items(), ("chain", result["chain"])]:
            w(f"{name:14s} {s['rtf']:12.1f} {s['mean_us']:9.2f} {s['p50_us']:9.2f} {s['p99_us']:9.2f}\n")
        w(f"chain = {' + '.join(result['chain']['stages'])}; bound >= {args.min_rtf:g}x real time: "
          f"{'ok' if result['ok'] else 'MISSED'}\n")
    return 0 if result["ok"] else 1
