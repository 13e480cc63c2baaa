"""The voice-modem line as a sans-IO state machine: rings, caller ID, answer, media, supervision.

:class:`ModemEngine` takes bytes from the serial port and explicit time, and gives bytes to write,
Line events and FramePort calls. The threaded shell (drivers/modem/driver.py) only moves bytes and
time in and out, so every behaviour here is tested on a virtual clock against the emulator's core.

Call flow (HARDWARE.md §1):

* **Ringing.** Each RING counts; caller ID (before the first RING in the UK/France, after it in the
  US) is gathered by :class:`~drivers.modem.cid.CidCollector`. :class:`IncomingCall` is emitted when
  a caller-ID record completes or at ring ``offer_after_rings``; later rings give :class:`Ringing`.
  No RING for ``ring_timeout_s``: the caller gave up (``RemoteHangup(reason="abandoned")``).
* **Answer.** ``answer()`` may come at any time; the modem goes off-hook (``AT+VLS=1``) no earlier
  than ring ``answer_after_rings``. Leg time (pts) starts there.
* **Seize.** ``seize()`` goes off-hook on an idle line (no call ringing) and runs the leg like an
  answered call — for line measurements (``gatewayd levels``); a ringing line refuses with
  ``CallFailed(486)``.
* **Media.** The modem is half duplex. While ``port.tx_active`` is false it records (``+VRX``): the
  received bytes become 20 ms frames pushed with ``port.push_rx`` (the modem's byte rate is the
  clock). While it is true it plays (``+VTX``): frames are pulled with ``port.pull_tx(pts)`` and
  written so that a *lead* of ``tx_lead_ms`` stays queued in the modem, measured on the monotonic
  clock (no sleeps); all-zero frames are pushed for the leg time that passes meanwhile, as the Line
  contract asks. ``DLE u`` (underrun) raises the lead. A digit during ``+VTX`` drops the queued
  audio (``DLE CAN DLE ETX``) so that the caller hears the barge-in at once.
* **Digits.** One :class:`DigitReceived` (source MODEM) per key press, with the pts of the press.
* **Remote hang-up.** DLE events listed in ``hangup_events`` (loop-current drop, busy, dial tone,
  silence ...), the software supervisors (silence on the received audio, call-progress tones) and
  ``max_call_s``. The :class:`RemoteHangup` carries ``tail_start_pts``; no audio after a DLE
  event's position is pushed.
* **Hang-up.** Leave the data state, flush, ``ATH``, then re-initialise (``ATZ`` ... ``+VCID=1``) so
  no per-call state survives. Caller-ID lines during a call (call waiting) are ignored.
* **Device lost.** :meth:`device_lost` ends the call with ``RemoteHangup(reason="device-lost")`` and
  reports the line down; :meth:`device_opened` re-initialises (the shell re-opens with backoff).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from drivers.line import (
    CallerIdReceived,
    CallFailed,
    DigitReceived,
    DigitSource,
    FramePort,
    IncomingCall,
    LineEvent,
    LineStatus,
    RemoteHangup,
    Ringing,
)
from drivers.modem import codec as codecs
from drivers.modem.at import (
    AtSession,
    Audio,
    CidField,
    Dle,
    Done,
    Mode,
    Ring,
    SessionSettings,
    StreamEnded,
    TextLine,
)
from drivers.modem.cid import CidCollector, CidRecord
from drivers.modem.config import POLARITY_EVENT, ModemConfig
from drivers.modem.dle import DleEvent, DleKind
from drivers.modem.profiles import get_profile
from drivers.modem.supervision import LineSupervisor, SilenceSupervisor
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame

log = logging.getLogger(__name__)

FRAMES_PER_S = SAMPLE_RATE // FRAME_SAMPLES  # 50
SupervisorFactory = Callable[[], LineSupervisor]
_ALIASES = {"K": "b", "i": "d", "m": "c"}  # vgetty's alternative codes for busy, dial tone, fax calling
_MAX_STREAM_ENDS = 3  # the modem leaving a data state on its own this often ends the call


class State(StrEnum):
    INIT = "init"  # initialising (at start, after a call, after a re-open)
    READY = "ready"  # on-hook, idle or ringing
    ANSWERING = "answering"
    CALL = "call"
    ENDING = "ending"  # hanging up
    DOWN = "down"  # no usable device


@dataclass
class _Leg:
    leg_id: str
    rings: int = 0
    last_ring: float = 0.0
    offered: bool = False
    rejected: bool = False
    cid: CidRecord | None = None
    port: FramePort | None = None


class ModemEngine:
    def __init__(self, config: ModemConfig, supervisors: Sequence[SupervisorFactory] = ()) -> None:
        self.config = config
        self._settings = SessionSettings(
            profile=get_profile(config.profile) if config.profile else None,
            country=config.country, codec_preference=config.codec_preference, vsd_sdi=config.vsd_sdi,
            rtscts=config.rtscts, extra_init=config.extra_init, rx_gain=config.rx_gain,
            tx_gain=config.tx_gain, exit_triple_dle=config.exit_triple_dle, pcm8_signed=config.pcm8_signed,
            command_timeout_s=config.command_timeout_s)
        self.session = AtSession(self._settings)
        self._hangup_codes = dict(config.hangup_events)
        factories = list(supervisors)
        if config.silence_timeout_s > 0:
            factories.insert(0, lambda: SilenceSupervisor(config.silence_timeout_s, config.silence_threshold))
        self._supervisor_factories = factories
        self.state = State.INIT
        self.status = ""  # last LineStatus state reported
        self.needs_reopen = False  # the shell should close and re-open the device
        self._events: deque[LineEvent] = deque()
        self._collector = CidCollector(config.cid_settle_s)
        self._leg: _Leg | None = None
        self._seq = 0
        # per call
        self._port: FramePort | None = None
        self._supervisors: list[LineSupervisor] = []
        self._leg_pts = 0
        self._clock_t0 = 0.0
        self._clock_pts0 = 0
        self._receiving = False
        self._rx_base_pts = 0
        self._rx_buf = bytearray()
        self._transmitting = False
        self._vtx_t0 = 0.0
        self._vtx_pts0 = 0
        self._vtx_frames = 0
        self._barge = False
        self._stream_ends = 0
        self._lead_ms = 0
        # counters
        self.calls = 0
        self.tx_underruns = 0
        self.rx_overruns = 0
        self.ignored_cid_lines = 0

    # ------------------------------------------------------------------------------ shell surface
    def start(self, now: float) -> None:
        self.state = State.INIT
        self.session.initialize(now, identify=True)
        self._process(now)

    def receive(self, data: bytes, now: float) -> None:
        self.session.feed(data, now)
        self._process(now)

    def handle_timer(self, now: float) -> None:
        self.session.poll(now)
        self._process(now)
        self._tick(now)

    def get_timer(self) -> float | None:
        times = [t for t in (self.session.get_timer(), self._collector.deadline()) if t is not None]
        if self._leg is not None and self.state is State.READY:
            times.append(self._leg.last_ring + self.config.ring_timeout_s)
        if self.state is State.CALL:
            times.append(self._clock_t0 + (self._leg_pts - self._clock_pts0 + FRAME_SAMPLES) / SAMPLE_RATE)
        return min(times) if times else None

    def data_to_send(self) -> bytes:
        return self.session.data_to_send()

    def take_flush(self) -> bool:
        return self.session.take_flush()

    def next_event(self) -> LineEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def leg_id(self) -> str:
        return self._leg.leg_id if self._leg else ""

    @property
    def leg_pts(self) -> int:
        return self._leg_pts

    @property
    def tx_lead_ms(self) -> int:
        return self._lead_ms

    @property
    def idle(self) -> bool:
        """On-hook with no command in progress (safe to close the port; a call may still be ringing)."""
        return self.state in (State.READY, State.DOWN) and not self.session.busy

    # ------------------------------------------------------------------------------ commands
    def answer(self, leg_id: str, port: FramePort, now: float) -> None:
        leg = self._leg
        if leg is None or leg.leg_id != leg_id or leg.rejected or self.state not in (State.INIT, State.READY):
            log.info("answer %s: no such call ringing", leg_id)
            self._emit(CallFailed(self.config.name, leg_id, 480, "no such call"))
            return
        leg.port = port
        self._maybe_answer(now)

    def seize(self, leg_id: str, port: FramePort, now: float) -> None:
        """Go off-hook on the idle line now (no call) and attach ``port`` as for an answered call."""
        if self._leg is not None or self.state not in (State.INIT, State.READY):
            busy = "a call is ringing" if self._leg is not None and self.state is State.READY else f"line {self.state}"
            log.info("seize %s refused: %s", leg_id, busy)
            self._emit(CallFailed(self.config.name, leg_id, 486, busy))
            return
        self._leg = _Leg(leg_id, rings=self.config.answer_after_rings, last_ring=now, offered=True, port=port)
        self._maybe_answer(now)

    def hangup(self, leg_id: str, now: float) -> None:
        leg = self._leg
        if leg is None or leg.leg_id != leg_id:
            return
        if self.state in (State.INIT, State.READY):
            leg.rejected = True  # analog: let it ring out; later rings of this call are ignored
            leg.port = None
            return
        if self.state in (State.ANSWERING, State.CALL):
            self._begin_ending(now)

    def shutdown(self, now: float) -> None:
        """Hang up whatever is in progress (Line.stop)."""
        if self._leg is not None:
            self.hangup(self._leg.leg_id, now)

    def device_lost(self, now: float, detail: str) -> None:
        leg = self._leg
        if leg is not None and self.state is not State.ENDING and (
                leg.offered or self.state in (State.ANSWERING, State.CALL)) and not leg.rejected:
            self._emit(RemoteHangup(self.config.name, leg.leg_id, reason="device-lost",
                                    tail_start_pts=self._leg_pts if self.state is State.CALL else None))
        self._reset_call()
        self._leg = None
        self._collector.clear()
        self.session.reset()
        self.state = State.DOWN
        self.needs_reopen = False
        self._status("down", detail)

    def device_opened(self, now: float) -> None:
        """A (possibly different) device is behind the port again: identify and initialise it."""
        self.session.reset()
        self.session.profile = self._settings.profile
        self.session.codec = None
        self.needs_reopen = False
        if self.status != "recovering":
            self._status("recovering", "re-initialising")
        self.state = State.INIT
        self.session.initialize(now, identify=True)
        self._process(now)

    # ------------------------------------------------------------------------------ session events
    def _process(self, now: float) -> None:
        while (ev := self.session.next_event()) is not None:
            try:
                self._dispatch(ev, now)
            except (ValueError, IndexError, KeyError):  # a bug must not take the line down
                log.exception("modem event %r", ev)

    def _dispatch(self, ev: object, now: float) -> None:
        if isinstance(ev, Audio):
            self._on_audio(ev.data)
        elif isinstance(ev, Dle):
            self._on_dle(ev.event, ev.mode, now)
        elif isinstance(ev, Done):
            self._on_done(ev, now)
        elif isinstance(ev, Ring):
            self._on_ring(now)
        elif isinstance(ev, CidField):
            self._on_cid(ev.tag, ev.value, now)
        elif isinstance(ev, StreamEnded):
            self._on_stream_ended(ev.mode, now)
        elif isinstance(ev, TextLine):
            log.debug("modem: %r", ev.line)

    def _on_done(self, ev: Done, now: float) -> None:
        name = ev.name
        if name == "initialize":
            if ev.ok:
                self.state = State.READY
                if self.status != "up":
                    self._status("up", ev.detail)
                self._maybe_answer(now)
            else:
                log.error("modem initialisation failed: %s", ev.detail)
                self._fail_device(ev.detail)
            return
        if name == "hang_up":
            self._reset_call()
            self._leg = None
            if not ev.ok:
                log.error("hang-up failed: %s", ev.detail)
                self._fail_device(f"hang-up failed: {ev.detail}")
            elif self.config.reinit_after_call:
                self.state = State.INIT
                self.session.initialize(now, identify=False)
            else:
                self.state = State.READY
            return
        if self.state is State.ENDING:
            self._start_hang_up(now)
            return
        if name == "answer":
            if ev.ok:
                self._start_call(now)
            else:
                leg = self._leg
                log.warning("off-hook failed: %s", ev.detail)
                if leg is not None:
                    self._emit(CallFailed(self.config.name, leg.leg_id, 503, f"answer failed: {ev.detail}"))
                self._begin_ending(now)
            return
        if self.state is not State.CALL:
            return
        if not ev.ok:
            self._remote_end("modem-error", self._leg_pts, now)
            return
        if name == "start_rx":
            self._receiving = True
            self._rx_base_pts = self._leg_pts
            self._rx_buf.clear()
            for s in self._supervisors:
                s.reset()
        elif name == "start_tx":
            self._advance_clock(now)
            self._transmitting = True
            self._vtx_t0 = now
            self._vtx_pts0 = self._leg_pts
            self._vtx_frames = 0
            self._pump_tx(now)
        elif name == "stop_tx":
            self._transmitting = False
        self._evaluate(now)

    # ------------------------------------------------------------------------------ ringing
    def _new_leg(self, now: float) -> _Leg:
        self._seq += 1
        leg = _Leg(f"{self.config.name}-{self._seq}", last_ring=now)
        self._leg = leg
        return leg

    def _in_call(self) -> bool:
        return self.state in (State.ANSWERING, State.CALL, State.ENDING)

    def _on_ring(self, now: float) -> None:
        if self._in_call():
            if self.state is State.CALL:
                self._on_hangup_code("R", self._leg_pts, now)
            return
        if self.state is State.DOWN:
            return
        leg = self._leg or self._new_leg(now)
        leg.rings += 1
        leg.last_ring = now
        offered_before = leg.offered
        rec = self._collector.flush()
        if rec is not None:
            self._on_cid_record(rec)
        if not leg.rejected:
            if not leg.offered and leg.rings >= self.config.offer_after_rings:
                self._offer(leg)
            elif offered_before:
                self._emit(Ringing(self.config.name, leg.leg_id, count=leg.rings))
        self._maybe_answer(now)

    def _on_cid(self, tag: str, value: str, now: float) -> None:
        if self._in_call():
            self.ignored_cid_lines += 1  # call waiting (thess #114): not a new call
            log.info("caller-ID line during a call ignored: %s=%s", tag, value)
            return
        if self.state is State.DOWN:
            return
        if self._leg is None:
            self._new_leg(now)  # caller ID before the first RING (UK, France)
        self._collector.add(tag, value, now)

    def _on_cid_record(self, rec: CidRecord) -> None:
        leg = self._leg
        if leg is None or leg.rejected:
            return
        leg.cid = rec
        if not leg.offered:
            self._offer(leg)
        self._emit(CallerIdReceived(self.config.name, leg.leg_id, caller=rec.caller, caller_name=rec.name,
                                    number_absent=rec.number_absent))

    def _offer(self, leg: _Leg) -> None:
        leg.offered = True
        rec = leg.cid
        self._emit(IncomingCall(self.config.name, leg.leg_id, caller=rec.caller if rec else "",
                                called=self.config.number, caller_name=rec.name if rec else "",
                                remote=self.config.device))

    def _maybe_answer(self, now: float) -> None:
        leg = self._leg
        if (leg is None or leg.port is None or leg.rejected or self.state is not State.READY
                or self.session.busy or leg.rings < self.config.answer_after_rings):
            return
        self.state = State.ANSWERING
        self._port = leg.port
        self.session.answer(now)

    # ------------------------------------------------------------------------------ the call
    def _start_call(self, now: float) -> None:
        self.state = State.CALL
        self.calls += 1
        self._leg_pts = 0
        self._clock_t0 = now
        self._clock_pts0 = 0
        self._stream_ends = 0
        profile = self.session.profile
        self._lead_ms = self.config.tx_lead_ms or (profile.tx_lead_ms if profile else 300)
        self._supervisors = [f() for f in self._supervisor_factories]
        self._evaluate(now)

    def _reset_call(self) -> None:
        self._port = None
        self._supervisors = []
        self._receiving = False
        self._transmitting = False
        self._barge = False
        self._rx_buf.clear()

    def _evaluate(self, now: float) -> None:
        """Move the modem towards the state the call needs (one procedure at a time)."""
        if self.state is not State.CALL or self.session.busy or self._port is None:
            return
        want_tx = self._port.tx_active
        mode = self.session.mode
        if mode is Mode.COMMAND:
            if want_tx:
                self.session.start_tx(now)
            else:
                self.session.start_rx(now)
        elif mode is Mode.VRX:
            if want_tx:
                self._stop_receiving(now)
                self.session.stop_rx(now)
        elif mode is Mode.VTX:
            if self._barge:
                self._barge = False
                self._transmitting = False
                self.session.stop_tx(now, abort=True)
            elif not want_tx:
                self._transmitting = False
                drain = max(0.0, self._vtx_t0 + self._vtx_frames / FRAMES_PER_S - now)
                self.session.stop_tx(now, drain_s=drain)
        self._process(now)

    def _stop_receiving(self, now: float) -> None:
        """Leave modem-clocked receive: the leg clock runs on the monotonic clock from here."""
        self._receiving = False
        self._rx_buf.clear()  # a partial frame is dropped; pts stays on the frame grid
        self._clock_t0 = now
        self._clock_pts0 = self._leg_pts
        for s in self._supervisors:
            s.reset()

    def _tick(self, now: float) -> None:
        if self.state is State.READY or self.state is State.INIT:
            rec = self._collector.poll(now)
            if rec is not None:
                self._on_cid_record(rec)
            leg = self._leg
            if leg is not None and now - leg.last_ring >= self.config.ring_timeout_s and not self.session.busy:
                if leg.offered and not leg.rejected:
                    self._emit(RemoteHangup(self.config.name, leg.leg_id, reason="abandoned"))
                self._leg = None
                self._collector.clear()
            self._maybe_answer(now)
            return
        if self.state is State.ENDING:
            self._start_hang_up(now)
            return
        if self.state is not State.CALL:
            return
        self._advance_clock(now)
        self._pump_tx(now)
        if self._leg_pts >= self.config.max_call_s * SAMPLE_RATE:
            self._remote_end("max-duration", None, now)
            return
        self._evaluate(now)

    def _advance_clock(self, now: float) -> None:
        """All-zero frames for leg time that passes while nothing is received."""
        if self._receiving or self._port is None:
            return
        target = self._clock_pts0 + math.floor((now - self._clock_t0) * FRAMES_PER_S + 1e-9) * FRAME_SAMPLES
        while self._leg_pts < target:
            self._port.push_rx(AudioFrame.silence(self._leg_pts))
            self._leg_pts += FRAME_SAMPLES

    def _pump_tx(self, now: float) -> None:
        """Keep ``lead`` of audio queued in the modem: frames due = elapsed + lead, on the monotonic clock."""
        port, codec = self._port, self.session.codec
        if not self._transmitting or port is None or codec is None or self.session.busy:
            return
        lead_frames = math.ceil(self._lead_ms / 1000 * FRAMES_PER_S)
        due = math.floor((now - self._vtx_t0) * FRAMES_PER_S + 1e-9) + lead_frames
        while self._vtx_frames < due and port.tx_active:
            samples = port.pull_tx(self._vtx_pts0 + self._vtx_frames * FRAME_SAMPLES)
            self.session.send_audio(codecs.encode(codec.fmt, samples))
            self._vtx_frames += 1

    def _on_audio(self, data: bytes) -> None:
        port, codec = self._port, self.session.codec
        if not self._receiving or port is None or codec is None or self.state is not State.CALL:
            return
        self._rx_buf += data
        size = FRAME_SAMPLES * codec.bytes_per_sample
        while len(self._rx_buf) >= size and self.state is State.CALL:
            chunk = bytes(self._rx_buf[:size])
            del self._rx_buf[:size]
            frame = AudioFrame(codecs.decode(codec.fmt, chunk), self._leg_pts)
            port.push_rx(frame)
            self._leg_pts += FRAME_SAMPLES
            for s in self._supervisors:
                d = s.feed(frame)
                if d is not None:
                    self._remote_end(d.reason, d.tail_start_pts, None)
                    return

    def _on_dle(self, ev: DleEvent, mode: Mode, now: float) -> None:
        if self.state is not State.CALL:
            return
        codec = self.session.codec
        if mode is Mode.VRX and self._receiving and codec is not None:
            pts = self._rx_base_pts + ev.pos // codec.bytes_per_sample
        else:
            pts = self._leg_pts
        leg = self._leg
        if ev.kind is DleKind.DTMF and leg is not None:
            self._emit(DigitReceived(self.config.name, leg.leg_id, ev.code, DigitSource.MODEM, start_pts=pts))
            if mode is Mode.VTX and self.config.barge_in and self._transmitting:
                self._barge = True
                self._evaluate(now)
            return
        if ev.kind is DleKind.TX_UNDERRUN:
            self.tx_underruns += 1
            self._lead_ms = min(self.config.tx_lead_max_ms, self._lead_ms + self.config.tx_lead_step_ms)
            log.info("transmit underrun; lead now %d ms", self._lead_ms)
            return
        if ev.kind is DleKind.RX_OVERRUN:
            self.rx_overruns += 1
            log.warning("modem receive overrun (the reader is too slow)")
            return
        if ev.kind is DleKind.PACKET:  # caller ID for a waiting call, distinctive ring: not ours to act on
            log.info("DLE packet during the call ignored: %r", ev.code)
            return
        code = _ALIASES.get(ev.code, ev.code)
        self._on_hangup_code(code, pts, now, silence_event=ev.kind in (DleKind.QUIET, DleKind.PRESUMED_HANGUP))

    def _on_hangup_code(self, code: str, pts: int, now: float, silence_event: bool = False) -> None:
        reason = self._hangup_codes.get(code)
        if reason is None:
            log.debug("DLE %r ignored", code)
            return
        if reason == POLARITY_EVENT[1] and pts < self.config.polarity_guard_ms * SAMPLE_RATE // 1000:
            log.info("%s: polarity reversal %d ms after the answer ignored (answer supervision)", self.config.name,
                     pts * 1000 // SAMPLE_RATE)
            return
        tail = pts
        if silence_event and self._receiving:
            # DLE s/q come +VSD's interval after the silence began
            tail = max(self._rx_base_pts, pts - self.config.vsd_sdi * SAMPLE_RATE // 10)
        elif self._receiving:
            # the modem reports a tone (DLE d, b) a second or so after it began: cut where the software
            # detector saw it begin in the audio received so far
            onsets = [p for s in self._supervisors for p in [s.tone_onset(reason)]
                      if p is not None and self._rx_base_pts <= p < tail]
            if onsets:
                log.debug("%s: DLE %r at %d, the tone began at %d", self.config.name, code, pts, min(onsets))
                tail = min(onsets)
        self._remote_end(reason, tail, now)

    def _on_stream_ended(self, mode: Mode, now: float) -> None:
        if self.state is not State.CALL:
            return
        self._stream_ends += 1
        log.warning("the modem left %s on its own", mode)
        if mode is Mode.VRX and self._receiving:
            self._stop_receiving(now)
        self._transmitting = False
        if self._stream_ends >= _MAX_STREAM_ENDS:
            self._remote_end("modem-error", self._leg_pts, now)
        else:
            self._evaluate(now)

    def _remote_end(self, reason: str, tail_start_pts: int | None, now: float | None) -> None:
        leg = self._leg
        if self.state is not State.CALL or leg is None:
            return
        log.info("call %s ended by the line: %s (tail at %s)", leg.leg_id, reason, tail_start_pts)
        self._emit(RemoteHangup(self.config.name, leg.leg_id, reason=reason, tail_start_pts=tail_start_pts))
        self._begin_ending(now)

    def _begin_ending(self, now: float | None) -> None:
        self.state = State.ENDING
        self._receiving = False
        self._transmitting = False
        self._port = None
        if now is not None:
            self._start_hang_up(now)
        # otherwise (from inside audio processing) the next tick or Done starts it

    def _start_hang_up(self, now: float) -> None:
        if self.state is State.ENDING and not self.session.busy:
            self.session.hang_up(now, reinit=False)

    def _fail_device(self, detail: str) -> None:
        self.state = State.DOWN
        self.needs_reopen = True
        self._status("down", detail)

    # ------------------------------------------------------------------------------ helpers
    def _emit(self, ev: LineEvent) -> None:
        self._events.append(ev)

    def _status(self, state: str, detail: str) -> None:
        self.status = state
        self._emit(LineStatus(self.config.name, "", state=state, detail=detail))
