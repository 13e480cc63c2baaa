"""The FXO line's call logic, sans-IO: ring cadence, caller-ID window, answer, remote hang-up.

:class:`FxoCallLogic` takes what the board and the audio detectors report, each with the host's
monotonic time ``now`` (and, where audio matters, the leg time ``pts``), and returns effects for the
shell in :mod:`drivers.fxo.line` to carry out. It has no threads, no clock and no I/O, so its tests
are transcripts on a virtual clock.

Model (HARDWARE.md §3.2, §3.3, §4):

* The board reports debounced ring edges with its own millisecond clock. A burst shorter than
  ``ring_min_ms`` is not a ring (a line reversal pulses a full-wave ring detector for ~1 ms).
  Bursts separated by less than ``ring_group_gap_ms`` form one ring *cycle* (the UK double ring);
  ring cycles are what is counted.
* Caller ID: with ``AFTER_RING`` the decoder listens from the end of ring cycle ``cid_after_ring``
  until a message arrives, the next cycle starts, or ``cid_window_s`` passes. With ``BEFORE_RING``
  an on-hook line reversal opens the window and the first ring closes it. With DTMF CLIP
  (``cid_on_idle``) the decoder also listens while the line is idle (:attr:`FxoCallLogic.cid_listening`):
  a message heard then starts the call (``ALERTED``, its caller ID known) before the first ring.
* The call is offered (:class:`IncomingCall`) once its caller ID is known or cannot come any more, so
  the handler sees the number when it decides, and never before the first ring cycle is complete
  (``ring_group_gap_ms`` after its last burst), so that its cadence (distinctive ring) is known: the
  header ``X-Ring-Cadence`` lists its on/off times in ms. Later ring cycles give :class:`Ringing`.
* ``answer`` goes off-hook at ring cycle ``rings_to_answer`` at the earliest; no ring for
  ``abandon_s`` before that means the caller gave up (``RemoteHangup(reason="abandoned")``).
* ``seize`` goes off-hook on an idle line (no call) and then runs like an answered call: for line
  measurements (``gatewayd levels``). A line that is ringing refuses with ``CallFailed(486)``.
* After answer: loop current absent for ``cpc_min_ms`` (CPC), a line reversal after
  ``polarity_guard_ms``, a busy / reorder / dial tone, a silence timeout or the maximum call length
  end the call; the driver then goes on-hook by itself. ``tail_start_pts`` marks where the
  disconnect signal began so that a recording is cut there.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from drivers.fxo.config import CidTiming, FxoConfig
from drivers.fxo.protocol import BOARD_CLOCK_WRAP
from drivers.fxo.seams import CallerIdRecord, ToneHit
from drivers.line import CallerIdReceived, CallFailed, IncomingCall, LineEvent, RemoteHangup, Ringing

log = logging.getLogger(__name__)

HOOK_FAILED_SIP_CODE = 503
_EPS = 1e-6  # timers fire at their deadline even when float subtraction lands a hair short


def _reached(now: float, since: float, seconds: float) -> bool:
    return now - since >= seconds - _EPS


# ------------------------------------------------------------------------------------------ effects
@dataclass(frozen=True)
class Emit:
    event: LineEvent


@dataclass(frozen=True)
class SetHook:
    off_hook: bool


@dataclass(frozen=True)
class CidWindow:
    """Start (``open``) or stop feeding the on-hook audio to the caller-ID decoder."""

    open: bool


@dataclass(frozen=True)
class Media:
    """Attach the answered leg's port (``leg_id``) or detach it (None); pts restarts at 0."""

    leg_id: str | None


@dataclass(frozen=True)
class Resync:
    """The board stopped answering: close the port and reconnect."""

    reason: str


Effect = Emit | SetHook | CidWindow | Media | Resync


class Phase(StrEnum):
    IDLE = "idle"
    ALERTED = "alerted"  # before-ring caller ID: the line reversed, no ring yet
    RINGING = "ringing"
    ANSWERING = "answering"  # HOOK OFF sent, waiting for OK
    CONNECTED = "connected"
    RELEASING = "releasing"  # HOOK ON sent, waiting for OK


@dataclass
class _Call:
    leg_id: str
    started: float
    cycles: int = 0
    offered: bool = False
    answer_requested: bool = False
    rejected: bool = False
    cid: CallerIdRecord | None = None
    cid_open: bool = False
    cid_done: bool = False
    cid_deadline: float = 0.0
    burst_on: bool = False
    burst_confirmed: bool = False
    burst_start_ms: int = 0
    burst_start_host: float = 0.0
    last_burst_end_ms: int | None = None
    last_burst_end_host: float = 0.0
    last_activity: float = 0.0
    cadence_ms: list[int] = field(default_factory=list)  # on/off durations of the first cycle
    # answered
    answered_at: float = 0.0
    loop_lost_since: float | None = None
    loop_lost_pts: int = 0
    loop_awaited: bool = False  # going off-hook: loop current has not been seen yet
    loop_seen_early: bool = False  # LOOP 1 arrived before the OK HOOK OFF


@dataclass
class Counters:
    short_ring_pulses: int = 0
    stuck_rings: int = 0
    cpc_glitches: int = 0  # loop drops shorter than cpc_min_ms
    ignored_polarity: int = 0


class FxoCallLogic:
    def __init__(self, config: FxoConfig, *, new_leg_id: Callable[[], str] | None = None) -> None:
        self.cfg = config
        self.phase = Phase.IDLE
        self.call: _Call | None = None
        self.counters = Counters()
        self._deadline = 0.0  # hook acknowledgement
        self._new_leg_id = new_leg_id or (lambda: f"{config.name}-{uuid.uuid4().hex[:12]}")

    @property
    def cid_listening(self) -> bool:
        """Whether the on-hook audio should feed the caller-ID decoder now."""
        if self.phase == Phase.IDLE:
            return self.cfg.cid_on_idle
        c = self.call
        return c is not None and c.cid_open and self.phase in (Phase.RINGING, Phase.ALERTED)

    # ------------------------------------------------------------------ board events
    def ring(self, on: bool, board_ms: int, now: float) -> list[Effect]:
        if self.phase not in (Phase.IDLE, Phase.ALERTED, Phase.RINGING):
            return []
        if on:
            if self.phase == Phase.IDLE:
                self.call = _Call(self._new_leg_id(), now)
            self.phase = Phase.RINGING
            rc = self._c()
            rc.burst_on, rc.burst_confirmed = True, False
            rc.burst_start_ms, rc.burst_start_host, rc.last_activity = board_ms, now, now
            return []
        c = self.call
        if self.phase != Phase.RINGING or c is None or not c.burst_on:
            return []
        c.burst_on = False
        c.last_activity = now
        duration = (board_ms - c.burst_start_ms) % BOARD_CLOCK_WRAP
        effects: list[Effect] = []
        if not c.burst_confirmed:
            if duration < self.cfg.ring_min_ms:
                self.counters.short_ring_pulses += 1
                log.debug("%s: %d ms ring pulse ignored", self.cfg.name, duration)
                if c.cycles == 0 and not c.cid_open:
                    self.phase, self.call = Phase.IDLE, None
                return []
            effects += self._confirm_burst(now)
        c.last_burst_end_ms, c.last_burst_end_host = board_ms, now
        if c.cycles == 1:
            c.cadence_ms.append(duration)
        if (self.cfg.cid == CidTiming.AFTER_RING and c.cycles == self.cfg.cid_after_ring and not c.cid_done
                and not c.rejected):
            c.cid_deadline = now + self.cfg.cid_window_s  # (re)started by every burst of the cycle
            if not c.cid_open:
                c.cid_open = True
                effects.append(CidWindow(True))
        return effects + self._maybe_answer(now)

    def loop(self, present: bool, now: float, pts: int) -> list[Effect]:
        c = self.call
        if c is None:
            return []
        if self.phase == Phase.ANSWERING and present:
            c.loop_seen_early = True
        if self.phase != Phase.CONNECTED:
            return []
        if present:
            if c.loop_lost_since is not None and not c.loop_awaited:
                self.counters.cpc_glitches += 1
                log.info("%s: loop current back after %.0f ms (shorter than cpc_min_ms)", self.cfg.name,
                         (now - c.loop_lost_since) * 1000)
            c.loop_lost_since, c.loop_awaited = None, False
        elif c.loop_lost_since is None:
            c.loop_lost_since, c.loop_lost_pts = now, pts
        return []

    def polarity(self, positive: bool, now: float, pts: int) -> list[Effect]:
        if self.phase == Phase.IDLE and self.cfg.cid == CidTiming.BEFORE_RING:
            self.call = _Call(self._new_leg_id(), now, last_activity=now)
            self.phase = Phase.ALERTED
            ac = self._c()
            ac.cid_open, ac.cid_deadline = True, now + self.cfg.cid_window_s
            return [CidWindow(True)]
        c = self.call
        if (self.phase == Phase.CONNECTED and c is not None and self.cfg.hangup_on_polarity
                and _reached(now, c.answered_at, self.cfg.polarity_guard_ms / 1000)):
            return self._remote_hangup("polarity", pts, now)
        self.counters.ignored_polarity += 1
        return []

    def hook_ack(self, off_hook: bool, now: float) -> list[Effect]:
        c = self.call
        if self.phase == Phase.ANSWERING and off_hook and c is not None:
            self.phase = Phase.CONNECTED
            c.answered_at = now
            if not c.loop_seen_early:
                c.loop_awaited, c.loop_lost_since, c.loop_lost_pts = True, now, 0
            return [Media(c.leg_id)]
        if self.phase == Phase.RELEASING and not off_hook:
            self.phase, self.call = Phase.IDLE, None
            return []
        log.debug("%s: unexpected acknowledgement (off_hook=%s) in %s", self.cfg.name, off_hook, self.phase)
        return []

    def hook_error(self, code: str, now: float) -> list[Effect]:
        c = self.call
        if self.phase == Phase.ANSWERING and c is not None:
            # The call keeps ringing; it is ours no more.
            self.phase = Phase.RINGING
            c.rejected, c.answer_requested = True, False
            c.last_activity = now
            return [Emit(CallFailed(self.cfg.name, c.leg_id, HOOK_FAILED_SIP_CODE, f"hook-refused {code}"))]
        if self.phase == Phase.RELEASING:
            self.phase, self.call = Phase.IDLE, None
            return [Resync(f"board refused HOOK ON ({code})")]
        return []

    def board_reset(self, now: float) -> list[Effect]:
        """The board restarted by itself (unsolicited HELLO): its relay is on-hook now."""
        return self._lost("board restarted", now, hook_on=False)

    def device_lost(self, now: float, detail: str = "") -> list[Effect]:
        """The control port is gone: end whatever leg there is; no command can be sent."""
        return self._lost(detail or "control port lost", now, hook_on=False)

    def audio_lost(self, now: float) -> list[Effect]:
        """The sound card stopped delivering audio: end the leg and go on-hook."""
        return self._lost("sound card stalled", now, hook_on=True)

    # ------------------------------------------------------------------ audio detectors
    def caller_id(self, record: CallerIdRecord, now: float) -> list[Effect]:
        if self.phase == Phase.IDLE and self.cfg.cid_on_idle:
            # DTMF CLIP with no alerting signal: the call begins with its caller ID; the ring follows
            log.info("%s: caller ID heard on the idle line; waiting for the ring", self.cfg.name)
            self.call = _Call(self._new_leg_id(), now, last_activity=now, cid=record, cid_done=True)
            self.phase = Phase.ALERTED
            return []
        c = self.call
        if self.phase not in (Phase.RINGING, Phase.ALERTED) or c is None or not c.cid_open:
            log.debug("%s: caller ID outside the window ignored", self.cfg.name)
            return []
        c.cid = record
        effects = self._close_cid(c)
        if c.rejected:
            return effects
        if c.offered:
            effects.append(Emit(self._cid_event(c.leg_id, record)))
        elif self.cfg.cid == CidTiming.AFTER_RING:
            effects += self._offer(c)
        return effects + self._maybe_answer(now)

    def tone(self, hit: ToneHit, now: float) -> list[Effect]:
        if self.phase != Phase.CONNECTED or not self.cfg.hangup_on_tones:
            return []
        return self._remote_hangup(f"{hit.kind}-tone", hit.start_pts, now)

    def silence(self, start_pts: int, now: float) -> list[Effect]:
        if self.phase != Phase.CONNECTED:
            return []
        return self._remote_hangup("silence", start_pts, now)

    # ------------------------------------------------------------------ commands
    def answer(self, leg_id: str, now: float) -> list[Effect]:
        c = self.call
        if self.phase != Phase.RINGING or c is None or c.leg_id != leg_id or not c.offered or c.rejected:
            log.info("%s: answer(%s) ignored in %s", self.cfg.name, leg_id, self.phase)
            return []
        c.answer_requested = True
        return self._maybe_answer(now)

    def seize(self, leg_id: str, now: float) -> list[Effect]:
        """Go off-hook on the idle line now, with no call (the leg then runs as an answered one)."""
        if self.phase != Phase.IDLE or self.call is not None:
            why = "a call is ringing" if self.phase in (Phase.RINGING, Phase.ALERTED) else f"line {self.phase}"
            log.info("%s: seize(%s) refused: %s", self.cfg.name, leg_id, why)
            return [Emit(CallFailed(self.cfg.name, leg_id, 486, why))]
        self.call = _Call(leg_id, now, cycles=self.cfg.rings_to_answer, offered=True, answer_requested=True,
                          last_activity=now)
        self.phase = Phase.ANSWERING
        self._deadline = now + self.cfg.hook_ack_timeout_s
        return [SetHook(True)]

    def hangup(self, leg_id: str, now: float) -> list[Effect]:
        c = self.call
        if c is None or c.leg_id != leg_id:
            return []
        if self.phase in (Phase.RINGING, Phase.ALERTED):
            c.rejected, c.answer_requested = True, False  # analog cannot reject: let it ring out
            return self._close_cid(c)
        if self.phase in (Phase.ANSWERING, Phase.CONNECTED):
            return self._release([Media(None)] if self.phase == Phase.CONNECTED else [], now)
        return []

    def reset(self) -> None:
        """The port was (re)opened and the board is on-hook: forget everything."""
        self.phase, self.call = Phase.IDLE, None

    # ------------------------------------------------------------------ timers
    def poll(self, now: float, pts: int) -> list[Effect]:
        c = self.call
        if c is None:
            return []
        cfg = self.cfg
        effects: list[Effect] = []
        if self.phase in (Phase.RINGING, Phase.ALERTED):
            if c.burst_on and not c.burst_confirmed and _reached(now, c.burst_start_host, cfg.ring_min_ms / 1000):
                effects += self._confirm_burst(now)
            if c.burst_on and _reached(now, c.burst_start_host, cfg.ring_stuck_s):
                self.counters.stuck_rings += 1
                log.warning("%s: ring on for %.1f s without an off edge; taken as off", cfg.name, cfg.ring_stuck_s)
                c.burst_on, c.last_activity = False, now
            if (not c.offered and not c.rejected and (self.cfg.cid != CidTiming.AFTER_RING or c.cid_done)
                    and not c.cid_open and c.cycles >= 1
                    and not c.burst_on and _reached(now, c.last_burst_end_host, cfg.ring_group_gap_ms / 1000)):
                effects += self._offer(c)  # the first ring cycle is complete: its cadence is known
            if c.cid_open and _reached(now, c.cid_deadline, 0.0):
                effects += self._close_cid(c)
                if cfg.cid == CidTiming.AFTER_RING and not c.offered and not c.rejected:
                    effects += self._offer(c)
            if self.call is c and not c.burst_on and _reached(now, c.last_activity, cfg.abandon_s):
                effects += self._close_cid(c)
                if c.offered and not c.rejected:
                    effects.append(Emit(RemoteHangup(cfg.name, c.leg_id, reason="abandoned")))
                self.phase, self.call = Phase.IDLE, None
                return effects
            return effects + self._maybe_answer(now)
        if self.phase in (Phase.ANSWERING, Phase.RELEASING) and _reached(now, self._deadline, 0.0):
            command = "HOOK OFF" if self.phase == Phase.ANSWERING else "HOOK ON"
            if self.phase == Phase.ANSWERING:
                effects.append(Emit(CallFailed(cfg.name, c.leg_id, HOOK_FAILED_SIP_CODE, "hook-timeout")))
            self.phase, self.call = Phase.IDLE, None
            return [*effects, Resync(f"no reply to {command}")]
        if self.phase == Phase.CONNECTED:
            if c.loop_lost_since is not None:
                limit = cfg.cpc_min_ms / 1000 + (cfg.loop_settle_ms / 1000 if c.loop_awaited else 0.0)
                if _reached(now, c.loop_lost_since, limit):
                    return self._remote_hangup("cpc", c.loop_lost_pts, now)
            if cfg.max_call_s and _reached(now, c.answered_at, cfg.max_call_s):
                return self._remote_hangup("max-duration", None, now)
        return effects

    # ------------------------------------------------------------------ internals
    def _c(self) -> _Call:
        assert self.call is not None
        return self.call

    def _confirm_burst(self, now: float) -> list[Effect]:
        c = self._c()
        c.burst_confirmed = True
        if c.last_burst_end_ms is not None:
            gap = (c.burst_start_ms - c.last_burst_end_ms) % BOARD_CLOCK_WRAP
            if gap < self.cfg.ring_group_gap_ms:
                if c.cycles == 1:
                    c.cadence_ms.append(gap)
                return []  # the second burst of a double ring
        c.cycles += 1
        effects: list[Effect] = []
        if c.cid_open:
            effects += self._close_cid(c)
        if c.rejected:
            return effects
        if not c.offered:
            if c.cycles > 1 and (self.cfg.cid != CidTiming.AFTER_RING or c.cid_done
                                 or c.cycles > self.cfg.cid_after_ring):
                effects += self._offer(c)
        else:
            effects.append(Emit(Ringing(self.cfg.name, c.leg_id, count=c.cycles)))
        return effects + self._maybe_answer(now)

    def _close_cid(self, c: _Call) -> list[Effect]:
        if not c.cid_open:
            return []
        c.cid_open, c.cid_done = False, True
        return [CidWindow(False)]

    def _offer(self, c: _Call) -> list[Effect]:
        c.offered = True
        rec = c.cid
        caller = name = ""
        if rec is not None and rec.checksum_ok:
            caller = rec.number or ("anonymous" if rec.number_absent == "P" else "")
            name = rec.name
        headers = {"X-Ring-Cadence": ",".join(str(v) for v in c.cadence_ms)} if c.cadence_ms else {}
        effects: list[Effect] = [Emit(IncomingCall(self.cfg.name, c.leg_id, caller=caller,
                                                   called=self.cfg.called_number, caller_name=name,
                                                   headers=headers, remote=self.cfg.device))]
        if rec is not None and not rec.checksum_ok:
            effects.append(Emit(self._cid_event(c.leg_id, rec)))
        return effects

    def _cid_event(self, leg_id: str, rec: CallerIdRecord) -> CallerIdReceived:
        caller = rec.number or ("anonymous" if rec.number_absent == "P" else "")
        return CallerIdReceived(self.cfg.name, leg_id, caller=caller, caller_name=rec.name,
                                number_absent=rec.number_absent, checksum_ok=rec.checksum_ok)

    def _maybe_answer(self, now: float) -> list[Effect]:
        c = self.call
        if (self.phase == Phase.RINGING and c is not None and c.answer_requested and not c.rejected and c.offered
                and c.cycles >= self.cfg.rings_to_answer and not c.cid_open):
            self.phase = Phase.ANSWERING
            self._deadline = now + self.cfg.hook_ack_timeout_s
            return [SetHook(True)]
        return []

    def _remote_hangup(self, reason: str, tail_start_pts: int | None, now: float) -> list[Effect]:
        c = self._c()
        log.info("%s: remote hang-up (%s) on %s", self.cfg.name, reason, c.leg_id)
        event = RemoteHangup(self.cfg.name, c.leg_id, reason=reason, tail_start_pts=tail_start_pts)
        return self._release([Emit(event), Media(None)], now)

    def _release(self, effects: list[Effect], now: float) -> list[Effect]:
        self.phase = Phase.RELEASING
        self._deadline = now + self.cfg.hook_ack_timeout_s
        return [*effects, SetHook(False)]

    def _lost(self, detail: str, now: float, hook_on: bool) -> list[Effect]:
        c = self.call
        effects: list[Effect] = []
        if c is None:
            return effects
        effects += self._close_cid(c)
        live = (self.phase in (Phase.ANSWERING, Phase.CONNECTED)
                or (self.phase == Phase.RINGING and c.offered and not c.rejected))
        if live:
            effects.append(Emit(RemoteHangup(self.cfg.name, c.leg_id, reason="device-lost")))
        if self.phase == Phase.CONNECTED:
            effects.append(Media(None))
        log.warning("%s: %s in %s", self.cfg.name, detail, self.phase)
        if hook_on and self.phase in (Phase.ANSWERING, Phase.CONNECTED):
            return self._release(effects, now)
        self.phase, self.call = Phase.IDLE, None
        return effects
