"""``gatewayd call URI``: place one SIP call with the SIP trunk driver, for people and for tests.

It plays a WAV file (or silence), sends digits (RFC 4733, or as in-band tones), records what it hears and
hangs up after a given time (counted in call audio time, not wall-clock), then says what happened: answered
or not, digits sent, recording path, who hung up and why.

Exit status: 0 when the call was answered, 1 when it was not (the SIP code is in the report), 2 on bad
arguments or when the SIP stack is missing.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import queue
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivers.line import Answered, CallFailed, DigitReceived, LineEvent, LineStatus, RemoteHangup, Ringing
from drivers.sip.config import SipConfigError, SipTrunkConfig
from drivers.sip.message import uri_host_port, uri_param
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples
from media.tones import tone
from media.wav import WavError, read_wav, write_wav

log = logging.getLogger(__name__)

EX_FAILED = 1
EX_USAGE = 2

_DTMF = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
         "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
         "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
         "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633)}
TONE_MS = 160
GAP_MS = 120


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "call", help="place a test SIP call: play, send digits, record, hang up, report",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("uri", help="SIP URI to call, e.g. sip:100@127.0.0.1:5060 (;transport=tcp for TCP)")
    p.add_argument("--play", type=Path, metavar="WAV", help="WAV file to send (any PCM WAV; converted to 8 kHz)")
    p.add_argument("--play-at", type=float, default=0.0, metavar="S",
                   help="call time (s after answer) at which --play starts (default 0: at once)")
    p.add_argument("--digits", default="", help="DTMF digits to send once the call is up (0-9 * # A-D)")
    p.add_argument("--digit-mode", choices=("rfc4733", "inband"), default="rfc4733")
    p.add_argument("--digits-at", type=float, default=1.0, metavar="S",
                   help="call time (s after answer) at which the digits start (default 1.0)")
    p.add_argument("--record", type=Path, metavar="OUT.wav", help="write what the far end sent to this WAV file")
    p.add_argument("--hangup-after", type=float, metavar="S",
                   help="hang up after S seconds of call audio (default: end of --play plus 1 s, else wait "
                        "for the far end up to --max-seconds)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="longest call when nothing else ends it")
    p.add_argument("--answer-timeout", type=float, default=30.0, help="give up ringing after this many seconds")
    p.add_argument("--from", dest="caller_id", default="gatewayd-call", help="caller ID (user part of From)")
    p.add_argument("--header", action="append", default=[], metavar="NAME=VALUE", help="extra header (repeat)")
    p.add_argument("--bind", default="", help="local address (default: 127.0.0.1 for a loopback target, else 0.0.0.0)")
    p.add_argument("--port", type=int, default=0, help="local SIP port (default: any free port)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


@dataclass
class CallReport:
    uri: str
    answered: bool = False
    sip_code: int = 0
    reason: str = ""
    ringing: bool = False
    digits_sent: str = ""
    digit_mode: str = ""
    digits_received: list[str] = field(default_factory=list)
    played_s: float = 0.0
    call_s: float = 0.0
    recording: str = ""
    recorded_s: float = 0.0
    hangup: str = ""  # "local", "remote-bye", "rtp-timeout", or "" when never answered


class CallerPort:
    """The caller's FramePort: plays samples (with in-band DTMF mixed in at given pts), keeps what it hears."""

    def __init__(self, play: Samples) -> None:
        self._play = play
        self.received: list[Samples] = []
        self.pts = 0  # leg time reached (samples)
        self._tones: list[tuple[int, Samples]] = []  # (start pts, samples), in order

    def add_tones(self, start_pts: int, samples: Samples) -> None:
        self._tones.append((start_pts, samples))

    def push_rx(self, frame: AudioFrame) -> None:
        self.received.append(frame.samples)
        self.pts = frame.end_pts

    def pull_tx(self, pts: int) -> Samples:
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        chunk = self._play[pts:pts + FRAME_SAMPLES]
        out[:len(chunk)] = chunk
        for start, samples in self._tones:
            lo, hi = max(pts, start), min(pts + FRAME_SAMPLES, start + len(samples))
            if lo < hi:
                out[lo - pts:hi - pts] = samples[lo - start:hi - start]
        return out

    @property
    def tx_active(self) -> bool:
        return True


def dtmf_samples(digits: str) -> Samples:
    parts = []
    for d in digits:
        parts.append(tone(_DTMF[d], -6.0, TONE_MS * SAMPLE_RATE // 1000))
        parts.append(np.zeros(GAP_MS * SAMPLE_RATE // 1000, dtype=np.int16))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def _target_ip(uri: str) -> str:
    host, _ = uri_host_port(uri)
    if not host:
        raise ValueError(f"{uri!r} is not a sip: URI with a host")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        try:
            return str(socket.getaddrinfo(host, None, socket.AF_INET)[0][4][0])
        except OSError as e:
            raise ValueError(f"cannot resolve {host!r}: {e}") from None


def run(args: argparse.Namespace) -> int:
    try:
        report = place_call(args)
    except (ValueError, WavError, SipConfigError) as e:
        sys.stderr.write(f"gatewayd call: {e}\n")
        return EX_USAGE
    except ImportError as e:
        sys.stderr.write(f"gatewayd call: the SIP stack is not available ({e}); install gatewayd[sip]\n")
        return EX_USAGE
    if args.json:
        sys.stdout.write(json.dumps(asdict(report), indent=2) + "\n")
    else:
        sys.stdout.write(_text(report))
    return 0 if report.answered else EX_FAILED


def _text(r: CallReport) -> str:
    lines = [f"call {r.uri}"]
    if not r.answered:
        lines.append(f"  not answered: {r.sip_code} {r.reason}".rstrip())
        return "\n".join(lines) + "\n"
    lines.append(f"  answered; call lasted {r.call_s:.2f} s, played {r.played_s:.2f} s")
    if r.digits_sent:
        lines.append(f"  digits sent: {r.digits_sent} ({r.digit_mode})")
    if r.digits_received:
        lines.append(f"  digits received: {''.join(r.digits_received)}")
    if r.recording:
        lines.append(f"  recording: {r.recording} ({r.recorded_s:.2f} s)")
    lines.append(f"  hang-up: {r.hangup}")
    return "\n".join(lines) + "\n"


def place_call(args: argparse.Namespace) -> CallReport:
    from drivers.sip.line import SipLine  # pjsua2: only when a call is placed

    uri: str = args.uri
    if not uri.lower().startswith("sip:"):
        raise ValueError(f"{uri!r} is not a sip: URI")
    bad = [d for d in args.digits.upper() if d not in _DTMF]
    if bad:
        raise ValueError(f"--digits: {''.join(bad)!r} are not DTMF digits (0-9 * # A-D)")
    headers: dict[str, str] = {}
    for h in args.header:
        name, eq, value = h.partition("=")
        if not eq or not name.strip():
            raise ValueError(f"--header {h!r}: use NAME=VALUE")
        headers[name.strip()] = value.strip()
    play = read_wav(args.play) if args.play else np.zeros(0, dtype=np.int16)
    lead = int(max(args.play_at, 0.0) * SAMPLE_RATE) if len(play) else 0
    play = np.concatenate([np.zeros(lead, dtype=np.int16), play])
    target = _target_ip(uri)
    bind = args.bind or ("127.0.0.1" if ipaddress.ip_address(target).is_loopback else "0.0.0.0")
    transport = "tcp" if uri_param(uri, "transport").lower() == "tcp" else "udp"
    cfg = SipTrunkConfig(name="call", bind_address=bind, port=args.port, transports=(transport,),
                         allowed_peers=(target,), rtp_timeout_s=30.0, local_user=args.caller_id)
    if args.hangup_after is not None:
        limit_s = args.hangup_after
    elif len(play):
        limit_s = len(play) / SAMPLE_RATE + 1.0
    else:
        limit_s = args.max_seconds
    digits = args.digits.upper()
    report = CallReport(uri=uri)
    events: queue.SimpleQueue[LineEvent] = queue.SimpleQueue()
    line = SipLine(cfg)
    port = CallerPort(play)
    leg = uuid.uuid4().hex
    line.start(events.put)
    try:
        line.dial(leg, uri, args.caller_id, headers, port, args.answer_timeout)
        ended = _wait_answer(events, report, args.answer_timeout + 10)
        if report.answered and not ended:
            ended = _talk(line, leg, port, events, report, digits, args.digit_mode, args.digits_at, limit_s)
        if report.answered and not ended:
            line.hangup(leg)
            report.hangup = "local"
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:  # let the BYE go out before the line stops
                try:
                    _note(events.get(timeout=0.1), report)
                except queue.Empty:
                    if line.active_legs == 0:
                        break
    finally:
        line.stop()
    report.call_s = round(port.pts / SAMPLE_RATE, 3)
    report.played_s = round(max(min(len(play), port.pts) - lead, 0) / SAMPLE_RATE, 3)
    if args.record:
        audio = np.concatenate(port.received) if port.received else np.zeros(0, dtype=np.int16)
        write_wav(args.record, audio)
        report.recording = str(args.record)
        report.recorded_s = round(len(audio) / SAMPLE_RATE, 3)
    return report


def _note(ev: LineEvent, report: CallReport) -> bool:
    """Update the report; True when the call is over."""
    if isinstance(ev, Ringing):
        report.ringing = True
    elif isinstance(ev, Answered):
        report.answered = True
        report.sip_code = 200
    elif isinstance(ev, CallFailed):
        report.sip_code, report.reason = ev.sip_code, ev.reason
        return True
    elif isinstance(ev, RemoteHangup):
        report.hangup = "rtp-timeout" if ev.reason == "rtp-timeout" else f"remote-{ev.reason}"
        return True
    elif isinstance(ev, DigitReceived):
        report.digits_received.append(ev.digit)
    elif isinstance(ev, LineStatus):
        pass
    return False


def _wait_answer(events: queue.SimpleQueue[LineEvent], report: CallReport, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not report.answered:
        left = deadline - time.monotonic()
        if left <= 0:
            report.sip_code, report.reason = 408, "no answer and no failure reported"
            return True
        try:
            if _note(events.get(timeout=left), report):
                return True
        except queue.Empty:
            continue
    return False


def _talk(line: Any, leg: str, port: CallerPort, events: queue.SimpleQueue[LineEvent], report: CallReport,
          digits: str, mode: str, digits_at: float, limit_s: float) -> bool:
    """Run the answered call until the time limit (call audio time) or a far-end hang-up."""
    digits_pts = int(digits_at * SAMPLE_RATE)
    limit = int(limit_s * SAMPLE_RATE)
    pending = bool(digits)
    # wall-clock guard in case the media clock stalls: twice the call time plus slack
    deadline = time.monotonic() + 2 * limit_s + 10
    while port.pts < limit:
        if pending and port.pts >= digits_pts:
            pending = False
            report.digits_sent = digits
            if mode == "rfc4733" and line.send_digits(leg, digits, tone_ms=TONE_MS, gap_ms=GAP_MS):
                report.digit_mode = "rfc4733"
            else:
                report.digit_mode = "inband" if mode == "inband" else "inband (no RFC 4733 on this call)"
                port.add_tones(port.pts + 2 * FRAME_SAMPLES, dtmf_samples(digits))
        try:
            if _note(events.get(timeout=0.02), report):
                return True
        except queue.Empty:
            pass
        if time.monotonic() > deadline:
            log.warning("call audio stalled at %.2f s", port.pts / SAMPLE_RATE)
            break
    return False
