"""``gatewayd bench fxo-media`` and ``gatewayd bench fxo-rig``: the FXO driver's media path.

* ``fxo-media``: CPU time (the thread's own, so other load does not count) of the driver's media
  thread per 20 ms frame (capture period in → frame to the port → frame from the port → playout
  period out), at the card rates a Pi's USB codec runs (8 and 48 kHz, the latter through the
  streaming resampler both ways). No sound card involved: the pump is stepped directly. Exits 1
  when the mean at any rate exceeds the bound.
* ``fxo-rig``: a whole call through the FXO emulator — a real pty and a real ALSA PCM (the FIFO rig)
  opened by PortAudio — measuring what the line does to audio: correlation of the caller's audio with
  what the driver's port received, of the driver's prompt with what the emulator recorded, the
  receive offset and transmit delay, CPC reaction time, overflows and underruns. Real time (~10 s per
  rate). Exits 1 when a correlation is under 0.99 or an underrun/overflow happened.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("fxo-media", help="FXO media thread CPU per 20 ms frame")
    p.add_argument("-n", type=int, default=3000, help="frames per rate (default 3000 = 60 s of audio)")
    p.add_argument("--bound-mean-us", type=float, default=2000.0,
                   help="fail when the mean CPU per frame is above (default 2000 µs = 10 %% of real time)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run_media)
    q: argparse.ArgumentParser = sub.add_parser("fxo-rig", help="FXO call through the emulator and real ALSA")
    q.add_argument("--rates", default="8000,48000", help="card rates to try (default 8000,48000)")
    q.add_argument("--json", action="store_true", help="print the figures as JSON")
    q.set_defaults(func=run_rig)


def _print(figures: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(figures) + "\n")
    else:
        sys.stdout.write(f"{title}: " + json.dumps(figures, indent=1) + "\n")


# ------------------------------------------------------------------ fxo-media
def measure_media(rate: int, n: int) -> dict[str, float]:
    import numpy as np

    from drivers.fxo.config import FxoConfig
    from drivers.fxo.pump import Attach, MediaPump
    from drivers.line import SilencePort
    from media.ring import FrameRing

    cfg = FxoConfig(audio_rate=rate, capture_ring_frames=n + 10)
    capture: FrameRing[bytes] = FrameRing(n + 10)
    playout: FrameRing[bytes] = FrameRing(n + 10)
    pump = MediaPump(cfg, capture, playout, threading.Event(), lambda _f: None, last_callback=time.monotonic)
    port = SilencePort()
    port.queue_tx((np.random.default_rng(2).standard_normal(160 * n) * 3000).astype(np.int16))
    pump.command(Attach("bench", port))
    period = rate // 50
    chunk = (np.random.default_rng(1).standard_normal(period) * 3000).astype("<i2").tobytes()
    times = []
    for i in range(n + 50):
        capture.put(chunk)
        t = time.thread_time()
        pump.step()
        if i >= 50:  # warm-up
            times.append((time.thread_time() - t) * 1e6)
        playout.get()
        if len(port.received) > 200:
            port.received.clear()
    times.sort()
    return {"rate": rate, "frames": n, "p50_us": round(statistics.median(times), 1),
            "p99_us": round(times[int(0.99 * (n - 1))], 1), "mean_us": round(statistics.fmean(times), 1)}


def run_media(args: argparse.Namespace) -> int:
    rows = [measure_media(rate, args.n) for rate in (8000, 48000)]
    figures = {"rates": rows, "bound_mean_us": args.bound_mean_us, "loadavg_1m": os.getloadavg()[0]}
    _print(figures, args.json, "FXO media thread CPU per 20 ms frame")
    return 0 if all(r["mean_us"] <= args.bound_mean_us for r in rows) else 1


# ------------------------------------------------------------------ fxo-rig
def measure_rig(rate: int) -> dict[str, Any]:
    import numpy as np
    from scipy import signal

    from drivers.emulators.fxo import FxoEmulator
    from drivers.fxo.config import CidTiming, FxoConfig
    from drivers.fxo.line import FxoLine
    from drivers.line import IncomingCall, LineEvent, RemoteHangup, SilencePort

    def voice(seconds: float, seed: int) -> Any:
        rng = np.random.default_rng(seed)
        sos = signal.butter(6, [300, 3400], btype="bandpass", fs=8000, output="sos")
        x = signal.sosfilt(sos, rng.standard_normal(round(seconds * 8000)))
        return np.clip(np.rint(x / np.std(x) * 3000), -32768, 32767).astype(np.int16)

    def locate(h: Any, n: Any) -> tuple[int, float]:
        c = signal.correlate(h.astype(float), n.astype(float), mode="valid", method="fft")
        lag = int(np.argmax(c))
        seg = h[lag:lag + len(n)].astype(float)
        return lag, float(np.dot(seg, n) / (np.linalg.norm(seg) * np.linalg.norm(n)))

    events: list[LineEvent] = []
    cond = threading.Condition()

    def sink(e: LineEvent) -> None:
        with cond:
            events.append(e)
            cond.notify_all()

    def wait(kind: type) -> Any:
        with cond:
            if not cond.wait_for(lambda: any(isinstance(e, kind) for e in events), 30):
                raise RuntimeError(f"no {kind.__name__} within 30 s")
            return next(e for e in events if isinstance(e, kind))

    with tempfile.TemporaryDirectory() as d, FxoEmulator(Path(d), rate=rate) as emu, emu.alsa.activated():
        line = FxoLine(FxoConfig(device=str(emu.serial_path), audio_device="fxo", audio_rate=rate,
                                 cid=CidTiming.NONE, rings_to_answer=1))
        line.start(sink)
        try:
            port = SilencePort()
            prompt = voice(3.0, 1)
            port.queue_tx(prompt)
            emu.ring(rings=5, cadence=(0.5, 1.5))
            call = wait(IncomingCall)
            line.answer(call.leg_id, port)
            if not emu.wait_off_hook(10):
                raise RuntimeError("the driver did not go off-hook")
            caller = voice(3.0, 2)
            h = emu.play(caller)
            h.done.wait(10)
            emu.wait_line_time((h.ended_at or 0) + 4000, 10)
            t_disc = emu.hang_up("cpc")
            hup = wait(RemoteHangup)
            emu.wait_on_hook(10)
            log = emu.calls[-1]
            rx = np.concatenate([f.samples for f in port.received])
            lag, corr = locate(rx, caller)
            lag_tx, corr_tx = locate(emu.record_far_end(), prompt)
            stats = line.stats()
        finally:
            line.stop()
    return {"rate": rate, "rx_correlation": round(corr, 5), "tx_correlation": round(corr_tx, 5),
            "rx_offset_ms": ((lag - ((h.started_at or 0) - log.off_hook_at)) / 8),
            "tx_delay_ms": lag_tx / 8, "cpc_reaction_ms": ((log.on_hook_at or 0) - t_disc) / 8,
            "tail_start_error_ms": ((hup.tail_start_pts or 0) - (t_disc - log.off_hook_at)) / 8,
            "capture_overflows": stats["capture_overflows"], "playout_underruns": stats["playout_underruns"],
            "emulator_late_ticks": emu.stats.late_ticks,
            "emulator_max_lateness_ms": round(emu.stats.max_lateness_s * 1000, 1),
            "emulator_fifo_overflows": emu.stats.capture_overflows}


def run_rig(args: argparse.Namespace) -> int:
    rows = [measure_rig(int(r)) for r in args.rates.split(",")]
    figures = {"rates": rows, "loadavg_1m": os.getloadavg()[0]}
    _print(figures, args.json, "FXO call through the emulator")
    ok = all(r["rx_correlation"] >= 0.99 and r["tx_correlation"] >= 0.99 and not r["capture_overflows"]
             and not r["playout_underruns"] for r in rows)
    return 0 if ok else 1
