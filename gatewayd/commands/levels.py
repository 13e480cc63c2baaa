"""``gatewayd levels``: a line's idle noise floor, its mains hum, and the SilenceThreshold to use on it.

Two ways in:

* ``gatewayd levels --line NAME [--config FILE] [--seconds S] [--on-call]`` opens the line itself
  from the configuration — the daemon must not be running on it: a daemon answering on its status
  socket and owning the line, or any process holding the device (the drivers lock their serial port;
  a busy sound card or SIP port refuses to open), is reported as busy (exit 75). An analog line
  (modem, FXO) is taken off-hook, or with ``--on-call`` the next call is answered (the caller stays
  silent); a SIP trunk has no audio of its own, so it always needs ``--on-call``. ``--settle`` seconds
  after going off-hook are skipped (hook-switch click, the modem starting to receive), then
  ``--seconds`` are recorded (``--save`` keeps them as a WAV file) and measured.
* ``gatewayd levels FILE.wav`` measures a recording instead (any WAV ``gatewayd analyze`` reads).

The measurement is :func:`media.noise_floor.measure_floor`: tones (a dial tone first of all) and DTMF
are found and left out, per-frame statistics of the idle frames, hum, and the suggestion with its
reasoning. Exit status: 0 a threshold is suggested; 1 there was no idle audio to measure; 64 bad
usage; 65/66 an unreadable WAV file; 69 the line could not be used (no device, no call came, the
line dropped); 73 ``--save`` could not be written (the report is still printed); 75 the line is busy;
78 a bad configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivers.line import (
    CallFailed,
    IncomingCall,
    Line,
    LineError,
    LineEvent,
    RemoteHangup,
)
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples
from media.noise_floor import FloorOptions, measure_floor
from media.wav import WavError, read_wav, write_wav

log = logging.getLogger(__name__)

EX_NOFLOOR = 1
EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73
EX_TEMPFAIL = 75
EX_CONFIG = 78

# how a driver says that someone else has the device
_BUSY_MARKS = ("could not exclusively lock", "resource temporarily unavailable", "device or resource busy",
               "device unavailable", "address already in use", "[errno 11]", "[errno 16]")


class LevelsError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return v


def _non_negative(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return v


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "levels", help="measure a line's idle noise floor and hum; suggest a SilenceThreshold",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", help="WAV file to measure instead of a line")
    p.add_argument("--line", metavar="NAME", help="configured line to measure (the daemon must not be running on it)")
    p.add_argument("--config", "-c", default="/etc/gatewayd/gatewayd.yaml", help="configuration file")
    p.add_argument("--seconds", type=_positive, default=10.0, metavar="S", help="how long to record (default 10)")
    p.add_argument("--on-call", action="store_true",
                   help="answer the next call and measure it (the caller stays silent) instead of going off-hook; "
                        "needed on a SIP line")
    p.add_argument("--wait", type=_positive, default=300.0, metavar="S",
                   help="with --on-call: how long to wait for the call (default 300)")
    p.add_argument("--settle", type=_non_negative, default=0.5, metavar="S",
                   help="seconds skipped after going off-hook / answering (default 0.5)")
    p.add_argument("--margin", type=_non_negative, default=FloorOptions.margin_db, metavar="DB",
                   help="suggested threshold: this many dB above the p90 of the idle frames (default 6)")
    p.add_argument("--country", default=None,
                   help="call-progress tone plan (default: the line's country, else us)")
    p.add_argument("--save", type=Path, metavar="OUT.wav", help="also write the recorded audio to this WAV file")
    p.add_argument("--json", action="store_true", help="machine-readable output (keys in README, 'gatewayd levels')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if bool(args.file) == bool(args.line):
        sys.stderr.write("gatewayd levels: give either a WAV file or --line NAME\n")
        return EX_USAGE
    rc = 0
    try:
        if args.file:
            source, samples = _from_file(args)
        else:
            source, samples = measure_line(args)
        if args.save:
            try:
                write_wav(args.save, samples)
                source["saved"] = str(args.save)
            except OSError as e:  # the measurement is still reported
                sys.stderr.write(f"gatewayd levels: cannot write {args.save}: {e.strerror or e}\n")
                rc = EX_CANTCREAT
        opts = FloorOptions(country=args.country or source.get("country") or "us", margin_db=args.margin)
        report = measure_floor(samples, opts)
    except LevelsError as e:
        sys.stderr.write(f"gatewayd levels: {e}\n")
        return e.code
    for n in source.get("notes", []):
        report.notes.append(n)
    if args.json:
        out = {"source": {k: v for k, v in source.items() if k != "notes"}, **report.to_json()}
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_header(source) + report.to_text())
    return rc or (0 if report.suggestion is not None else EX_NOFLOOR)


def _header(src: dict[str, Any]) -> str:
    if "file" in src:
        return f"{src['file']}: {src['duration']:.2f} s\n"
    what = "answered a call" + (f" from {src['caller']}" if src.get("caller") else "") if src["mode"] == "on-call" \
        else "off-hook"
    codec = f", codec {src['codec']}" if src.get("codec") else ""
    return (f"line {src['line']} ({src['kind']}{codec}): {what}; {src['duration']:.2f} s measured after "
            f"{src['settle']:g} s settling\n")


def _from_file(args: argparse.Namespace) -> tuple[dict[str, Any], Samples]:
    try:
        samples = read_wav(args.file)
    except WavError as e:
        raise LevelsError(EX_NOINPUT if "cannot read" in str(e) else EX_DATAERR, str(e)) from None
    return {"file": str(args.file), "duration": round(len(samples) / SAMPLE_RATE, 3)}, samples


# ------------------------------------------------------------------------------------------ a live line
class RecordingPort:
    """The measurement's FramePort: skips ``settle`` frames, keeps the next ``wanted``, sends silence."""

    def __init__(self, settle_frames: int, wanted_frames: int) -> None:
        self.settle_frames = settle_frames
        self.wanted_frames = wanted_frames
        self.frames: list[AudioFrame] = []
        self.seen = 0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def push_rx(self, frame: AudioFrame) -> None:
        with self._lock:
            self.seen += 1
            if self.seen <= self.settle_frames or self.done.is_set():
                return
            self.frames.append(AudioFrame(frame.samples.copy(), frame.pts))
            if len(self.frames) >= self.wanted_frames:
                self.done.set()

    def pull_tx(self, pts: int) -> Samples:
        return np.zeros(FRAME_SAMPLES, dtype=np.int16)

    @property
    def tx_active(self) -> bool:
        return False

    def samples(self, before_pts: int | None = None) -> Samples:
        with self._lock:
            keep = [f.samples for f in self.frames if before_pts is None or f.end_pts <= before_pts]
        return np.concatenate(keep) if keep else np.zeros(0, dtype=np.int16)


@dataclass
class _Session:
    line: Line
    events: queue.SimpleQueue[LineEvent] = field(default_factory=queue.SimpleQueue)
    leg_id: str = ""


def measure_line(args: argparse.Namespace) -> tuple[dict[str, Any], Samples]:
    from gatewayd.config import ConfigError, FxoLineConfig, ModemLineConfig, SipLineConfig, load_config
    from gatewayd.factories import build_line

    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        raise LevelsError(EX_CONFIG, "\n".join(str(p) for p in e.problems) or str(e)) from None
    lc = next((c for c in cfg.lines if c.name == args.line), None)
    if lc is None:
        names = ", ".join(c.name for c in cfg.lines) or "none"
        raise LevelsError(EX_USAGE, f"no line {args.line!r} in {args.config} (lines: {names})")
    if isinstance(lc, SipLineConfig) and not args.on_call:
        raise LevelsError(EX_USAGE, f"line {lc.name!r} is a SIP trunk: it has no audio of its own; measure a call "
                                    "with --on-call (call it and stay silent)")
    owner = daemon_owning(cfg, lc.name)
    if owner is not None:
        raise LevelsError(EX_TEMPFAIL, f"line {lc.name!r} is busy: gatewayd (pid {owner}) is running with it; stop "
                                       "the daemon first (systemctl stop gatewayd), then measure")
    device = (lc.device if isinstance(lc, ModemLineConfig) else
              f"{lc.control_device} + sound card {lc.audio_device!r}" if isinstance(lc, FxoLineConfig) else
              f"{lc.bind_address}:{lc.port}")
    line = build_line(lc, cfg, supervise=False)
    session = _Session(line)
    try:
        line.start(session.events.put)
    except LineError as e:
        text = str(e)
        if any(m in text.lower() for m in _BUSY_MARKS):
            raise LevelsError(EX_TEMPFAIL, f"line {lc.name!r} is busy: another process has {device} ({text}); "
                                           "is gatewayd running? stop it first (systemctl stop gatewayd)") from None
        raise LevelsError(EX_UNAVAILABLE, f"line {lc.name!r} did not start: {text}") from None
    port = RecordingPort(round(args.settle * SAMPLE_RATE / FRAME_SAMPLES),
                         max(1, round(args.seconds * SAMPLE_RATE / FRAME_SAMPLES)))
    source: dict[str, Any] = {"line": lc.name, "kind": line.kind, "mode": "on-call" if args.on_call else "off-hook",
                              "settle": args.settle, "country": getattr(lc, "country", None) or "us", "notes": []}
    try:
        if args.on_call:
            call = _answer_next_call(session, port, args.wait)
            source["caller"] = call.caller
        else:
            seize = getattr(line, "seize", None)
            if seize is None:
                raise LevelsError(EX_USAGE, f"line {lc.name!r} ({line.kind}) cannot go off-hook by itself; "
                                            "use --on-call")
            session.leg_id = f"levels-{uuid.uuid4().hex[:8]}"
            seize(session.leg_id, port)
        tail = _record(session, port, args.seconds + args.settle + 30.0, source)
        codec = _codec(line)
        if codec is not None:
            source["codec"] = codec[0]
            if codec[1] in ("u8", "s8"):
                source["notes"].append(f"the modem sends 8-bit linear audio ({codec[0]}): steps of 256, so a floor "
                                       "under about -50 dBov is not resolved (what silence detection sees all the "
                                       "same)")
    finally:
        if session.leg_id:
            line.hangup(session.leg_id)
            time.sleep(0.3)  # let the hang-up reach the device before it is closed
        line.stop()
    samples = port.samples(tail)
    source["duration"] = round(len(samples) / SAMPLE_RATE, 3)
    return source, samples


def daemon_owning(cfg: Any, line_name: str) -> int | None:
    """pid of a gatewayd answering on this configuration's status socket with ``line_name`` among its
    lines; None when none answers (not running, or a stale socket)."""
    from gatewayd.commands.status import query
    from gatewayd.daemon import find_status_socket

    path = find_status_socket(cfg)
    if not path.exists():
        return None
    try:
        st = query(str(path), timeout=2.0)
    except (OSError, ValueError):
        return None
    if any(ln.get("name") == line_name for ln in st.get("lines", [])):
        return int(st.get("pid", 0))
    return None


def _answer_next_call(session: _Session, port: RecordingPort, wait_s: float) -> IncomingCall:
    sys.stderr.write(f"gatewayd levels: waiting up to {wait_s:g} s for a call on line {session.line.name}: "
                     "call it, and say nothing once it answers\n")
    deadline = time.monotonic() + wait_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LevelsError(EX_UNAVAILABLE, f"no call on line {session.line.name} within {wait_s:g} s")
        try:
            ev = session.events.get(timeout=min(left, 0.5))
        except queue.Empty:
            continue
        if isinstance(ev, IncomingCall):
            session.leg_id = ev.leg_id
            session.line.answer(ev.leg_id, port)
            log.info("answering %s from %r", ev.leg_id, ev.caller)
            return ev


def _record(session: _Session, port: RecordingPort, timeout_s: float, source: dict[str, Any]) -> int | None:
    """Wait until the port has its frames; returns the pts before which audio is the line's (a remote
    hang-up cuts the recording where its signal began)."""
    deadline = time.monotonic() + timeout_s
    while not port.done.is_set():
        if time.monotonic() > deadline:
            got = len(port.frames) * FRAME_SAMPLES / SAMPLE_RATE
            raise LevelsError(EX_UNAVAILABLE, f"line {session.line.name}: only {got:.1f} s of audio arrived in "
                                              f"{timeout_s:.0f} s")
        try:
            ev = session.events.get(timeout=0.05)
        except queue.Empty:
            continue
        if ev.leg_id != session.leg_id:
            continue
        if isinstance(ev, CallFailed):
            leg, session.leg_id = session.leg_id, ""
            code = EX_TEMPFAIL if ev.sip_code == 486 else EX_UNAVAILABLE
            raise LevelsError(code, f"line {session.line.name}: {leg} failed: {ev.sip_code} {ev.reason}".rstrip())
        if isinstance(ev, RemoteHangup):
            session.leg_id = ""
            got = len(port.frames) * FRAME_SAMPLES / SAMPLE_RATE
            source["notes"].append(f"the line ended the leg ({ev.reason}) after {got:.2f} s of the requested audio")
            return ev.tail_start_pts
    return None


def _codec(line: Line) -> tuple[str, str] | None:
    """(name, sample format) of a voice modem's codec, when the line is one."""
    codec = getattr(getattr(getattr(line, "engine", None), "session", None), "codec", None)
    if codec is None:
        return None
    return str(codec.name), str(codec.fmt)
