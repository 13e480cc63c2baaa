"""A virtual exchange: an emulated line whose callers (and dialled far ends) follow a script.

It implements :class:`~drivers.line.Line` entirely in-process, for ``gatewayd simulate`` and tests.
One thread ticks every 20 ms of *virtual* time: before each tick it calls ``pace(t)`` (which, in
``gatewayd simulate``, waits until the daemon is idle and advances the virtual clock), then for every
connected leg pushes the caller's audio for that frame, pulls what gatewayd sends, and fires the
script's events that are due (digits, hang-up, the far end answering). So a 60 s scenario runs in
well under a second and gives the same transcript every time.

Times in a script are seconds of media time: for the inbound caller they count from the answer,
for a dialled far end from the dial.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from drivers.line import (
    Answered,
    CallFailed,
    DigitReceived,
    DigitSource,
    EventSink,
    FramePort,
    IncomingCall,
    LineError,
    LineEvent,
    RemoteHangup,
    Ringing,
    deliver,
)
from media.dtmf import DtmfSender
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples

log = logging.getLogger(__name__)

def dtmf_samples(digits: str, tone_ms: int = 100, gap_ms: int = 100, level_dbm0: float = -10.0) -> Samples:
    sender = DtmfSender(digits, tone_ms=tone_ms, gap_ms=gap_ms, level_dbm0=level_dbm0)
    return sender.read(sender.total_samples)


@dataclass(frozen=True)
class Digits:
    at: float  # seconds
    digits: str
    mode: str = "inband"  # "inband" (tones in the audio) or "rfc4733" (out-of-band events)
    tone_ms: int = 100
    gap_ms: int = 100


@dataclass
class Party:
    """What one party does: audio (placed at times), digits, and when it hangs up."""

    audio: list[tuple[float, Samples]] = field(default_factory=list)
    digits: list[Digits] = field(default_factory=list)
    hangup_at: float | None = None

    def timeline(self, n_samples: int) -> Samples:
        out = np.zeros(n_samples, np.int32)
        items = list(self.audio)
        items += [(d.at, dtmf_samples(d.digits, d.tone_ms, d.gap_ms)) for d in self.digits if d.mode == "inband"]
        for at, s in items:
            i = round(at * SAMPLE_RATE)
            if i >= n_samples:
                continue
            seg = s[: n_samples - i]
            out[i:i + len(seg)] += seg
        return np.clip(out, -32768, 32767).astype(np.int16)


@dataclass
class Caller(Party):
    caller: str = "+15550100001"
    called: str = "+15550100000"
    headers: Mapping[str, str] = field(default_factory=dict)
    request_uri_host: str = ""


@dataclass
class FarEnd(Party):
    """A far end that CallAndBridge dials: answers after ``answer_after`` s, or busy, or never."""

    answer_after: float | None = 1.0
    busy: bool = False


@dataclass
class VirtualLeg:
    leg_id: str
    direction: str
    party: Party
    script: Samples
    port: FramePort | None = None
    offered_at: float = 0.0
    connected_at: float | None = None
    pts: int = 0
    heard: list[Samples] = field(default_factory=list)
    gone: bool = False
    end_reason: str = ""
    end_code: int = 0
    rang: bool = False
    fired: set[int] = field(default_factory=set)

    def heard_audio(self) -> Samples:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, np.int16)


class VirtualExchange:
    kind = "virtual"

    def __init__(self, name: str = "virtual", *, far_ends: Mapping[str, FarEnd] | None = None,
                 default_far_end: FarEnd | None = None, max_seconds: float = 600.0,
                 pace: Callable[[float], None] | None = None) -> None:
        self.name = name
        self.far_ends = dict(far_ends or {})
        self.default_far_end = default_far_end
        self.max_seconds = max_seconds
        self.pace = pace or (lambda t: None)
        self.dtmf_inband = True
        self.legs: dict[str, VirtualLeg] = {}
        self.t = 0.0
        self._sink: EventSink | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.done = threading.Event()
        self._counter = 0

    # ------------------------------------------------------------------ Line
    def start(self, sink: EventSink) -> None:
        self._sink = sink

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    def answer(self, leg_id: str, port: FramePort) -> None:
        with self._lock:
            leg = self.legs.get(leg_id)
            if leg is None or leg.gone:
                raise LineError(f"no offered leg {leg_id}")
            leg.port = port
            if leg.connected_at is None:
                leg.connected_at = self.t

    def hangup(self, leg_id: str, sip_code: int = 0) -> None:
        with self._lock:
            leg = self.legs.get(leg_id)
            if leg is not None and not leg.gone:
                leg.gone = True
                leg.end_reason = "rejected" if leg.connected_at is None else "hung up by gatewayd"
                leg.end_code = sip_code

    def send_digits(self, leg_id: str, digits: str, tone_ms: int = 250, gap_ms: int = 100) -> bool:
        return False  # in-band tones through the port, like an analog line

    def dial(self, leg_id: str, to: str, caller_id: str, headers: Mapping[str, str], port: FramePort,
             timeout_s: float) -> None:
        far = self.far_ends.get(to, self.default_far_end)
        if far is None:
            raise LineError(f"nobody answers at {to}")
        n = int((self.max_seconds + 1) * SAMPLE_RATE)
        with self._lock:
            self.legs[leg_id] = VirtualLeg(leg_id, "Outbound", far, far.timeline(n), port=port, offered_at=self.t)

    # ------------------------------------------------------------------ driving
    def offer(self, caller: Caller) -> str:
        """Present an inbound call now and start the clock (if not yet running)."""
        self._counter += 1
        leg_id = f"{self.name}-in-{self._counter}"
        n = int((self.max_seconds + 1) * SAMPLE_RATE)
        with self._lock:
            self.legs[leg_id] = VirtualLeg(leg_id, "Inbound", caller, caller.timeline(n), offered_at=self.t)
        self._emit(IncomingCall(self.name, leg_id, caller=caller.caller, called=caller.called,
                                headers=dict(caller.headers), remote="virtual",
                                request_uri_host=caller.request_uri_host))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"virtual-{self.name}", daemon=True)
            self._thread.start()
        return leg_id

    def _emit(self, ev: LineEvent) -> None:
        deliver(self._sink, ev, self.name)

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and self.t < self.max_seconds:
                self.pace(self.t)
                with self._lock:
                    legs = list(self.legs.values())
                if legs and all(leg.gone for leg in legs):
                    break
                for leg in legs:
                    self._tick(leg)
                self.t = round(self.t + FRAME_SAMPLES / SAMPLE_RATE, 6)
            self.pace(self.t)
        except Exception:
            log.exception("virtual exchange stopped")
        finally:
            self.done.set()

    def _tick(self, leg: VirtualLeg) -> None:
        if leg.gone:
            return
        party = leg.party
        if leg.direction == "Outbound" and leg.connected_at is None:
            far = party
            assert isinstance(far, FarEnd)
            since = self.t - leg.offered_at
            if far.busy:
                leg.gone, leg.end_reason, leg.end_code = True, "busy", 486
                self._emit(CallFailed(self.name, leg.leg_id, 486, "busy"))
            elif not leg.rang:
                leg.rang = True
                self._emit(Ringing(self.name, leg.leg_id))
            elif far.answer_after is not None and since >= far.answer_after:
                leg.connected_at = self.t
                self._emit(Answered(self.name, leg.leg_id))
            return
        if leg.connected_at is None or leg.port is None:
            return
        since = self.t - leg.connected_at
        for i, d in enumerate(party.digits):
            if d.mode != "inband" and i not in leg.fired and since >= d.at:
                leg.fired.add(i)
                for k, ch in enumerate(d.digits):
                    start = leg.pts + k * (d.tone_ms + d.gap_ms) * SAMPLE_RATE // 1000
                    self._emit(DigitReceived(self.name, leg.leg_id, ch, DigitSource.RFC4733, start_pts=start))
        if party.hangup_at is not None and since >= party.hangup_at:
            leg.gone, leg.end_reason = True, "hung up by caller"
            self._emit(RemoteHangup(self.name, leg.leg_id, 0, "bye"))
            return
        i = leg.pts
        chunk = leg.script[i:i + FRAME_SAMPLES]
        if len(chunk) < FRAME_SAMPLES:
            chunk = np.concatenate([chunk, np.zeros(FRAME_SAMPLES - len(chunk), np.int16)])
        leg.port.push_rx(AudioFrame(np.ascontiguousarray(chunk), leg.pts))
        leg.heard.append(np.array(leg.port.pull_tx(leg.pts), dtype=np.int16))
        leg.pts += FRAME_SAMPLES
