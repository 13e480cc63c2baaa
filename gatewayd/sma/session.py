"""One SIP-media-application transaction (call), as a sans-IO state machine.

Modelled on aioquic's ``QuicConnection``: the runtime feeds inputs with an explicit time and collects
effects; the session never reads a clock, sleeps, or does I/O::

    session = Session(config, transaction_id)
    session.handle(InboundCall(...), now)          # any gatewayd.sma.events input
    while (effect := session.next_effect()) is not None:
        execute(effect)                            # gatewayd.sma.effects: InvokeHandler, StartAction...
    deadline = session.get_timer()                 # earliest time the session wants handle_timer(now)
    ...
    session.handle_timer(now)                      # handler timeouts, 30 s ring timeout, dial timeouts

``now`` is the runtime's monotonic clock in seconds (any origin, never going back).

How the contract maps onto the state (SPEC §3):

* Invocations are serialised: one in flight at a time, the others queued in order. ``Sequence`` is
  given at dispatch; ``CallDetails`` reflect the call at dispatch time.
* The action list (``_pending``) runs one action at a time (``_current``). It is held while an
  invocation whose response may carry actions is queued or in flight, because that response decides
  whether the rest runs (empty / absent ``Actions``) or is replaced (a non-empty list).
* Responses to NEW_OUTBOUND_CALL, RINGING and ACTION_INTERRUPTED, and any response when no leg is left,
  only update TransactionAttributes.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from uuid import uuid4

from gatewayd.sma import actions as A
from gatewayd.sma import effects as E
from gatewayd.sma import events as V
from gatewayd.sma.parse import ActionError, LegView, ParseContext, parse_action
from gatewayd.sma.response import InvalidResponse, validate_response

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionConfig:
    """Per-application settings of a session (from the application and rule that routed the call)."""

    sip_media_application_id: str
    aws_account_id: str = "000000000000"
    aws_region: str = "us-east-1"
    #: SipRuleId shown for inbound calls (absent on outbound calls, as in Chime).
    sip_rule_id: str | None = None
    #: Handler invocation timeout; one retry follows, then the call is hung up with 480.
    handler_timeout_s: float = 20.0
    #: An inbound call nobody answered is rejected (480) after this long.
    ring_timeout_s: float = 30.0
    #: Invocations per transaction; past it the call is hung up with 480.
    max_invocations: int = 1000
    #: RecordAudio without DurationInSeconds stops after this long.
    max_record_duration_s: int = 3600
    #: Bucket names actions may use; None: any (the runtime's store decides).
    buckets: frozenset[str] | None = None


class _LegState(Enum):
    OFFERED = "offered"  # inbound, ringing, not answered
    DIALING = "dialing"  # outbound, not answered
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass
class _Leg:
    call_id: str
    tag: str
    direction: str
    from_number: str
    to_number: str
    start_ms: int
    sip_headers: dict[str, str]
    state: _LegState
    listed: bool = True  # shown in Participants (a CallAndBridge LEG-B only once it answered)
    rang: bool = False  # RINGING sent (API outbound LEG-A)

    @property
    def live(self) -> bool:
        return self.state is not _LegState.DISCONNECTED

    def participant(self) -> dict[str, Any]:
        p: dict[str, Any] = {"CallId": self.call_id, "ParticipantTag": self.tag, "To": self.to_number,
                             "From": self.from_number, "Direction": self.direction,
                             "StartTimeInMilliseconds": str(self.start_ms)}
        if self.state is _LegState.CONNECTED:
            p["Status"] = "Connected"
        elif self.state is _LegState.DISCONNECTED:
            p["Status"] = "Disconnected"
        if self.sip_headers:
            p["SipHeaders"] = dict(self.sip_headers)
        return p


@dataclass
class _Invocation:
    event_type: str
    action_data: dict[str, Any] | None
    about: str | None  # the leg the event is about: default target of its response's actions
    informational: bool = False  # the response's actions are ignored
    interrupting: bool = False  # CALL_UPDATE_REQUESTED: a response with actions interrupts
    error: tuple[str, str] | None = None  # INVALID_LAMBDA_RESPONSE's top-level ErrorType / ErrorMessage
    payload: dict[str, Any] | None = None
    invocation_id: int = 0
    attempt: int = 0
    deadline: float = 0.0


@dataclass
class _Running:
    action_id: int
    action: A.Action
    dial_call_id: str | None = None  # CallAndBridge: the LEG-B being dialled
    dial_deadline: float | None = None
    deferred_hangup: _Invocation | None = None  # RecordAudio whose leg hung up: HANGUP after its report


@dataclass
class _Pending:
    raw: Mapping[str, Any]
    default_call_id: str | None


@dataclass
class SessionStats:
    """Counters of one session (for logs and metrics)."""

    invocations: int = 0
    retries: int = 0
    actions_started: int = 0
    action_failures: int = 0
    invalid_responses: int = 0


class Session:
    """The Chime SMA contract for one call. See the module docstring for the calling pattern.

    ``new_call_id`` makes the CallIds of legs the engine dials (CallAndBridge's LEG-B); tests pass a
    deterministic one.
    """

    def __init__(self, config: SessionConfig, transaction_id: str, *,
                 new_call_id: Callable[[], str] | None = None) -> None:
        self.config = config
        self.transaction_id = transaction_id
        self._new_call_id = new_call_id or (lambda: str(uuid4()))
        self._effects: deque[E.Effect] = deque()
        self._ended = False
        self._started = False
        self._outbound = False
        self._legs: dict[str, _Leg] = {}
        self._attributes: dict[str, Any] = {}
        self._queue: deque[_Invocation] = deque()
        self._inflight: _Invocation | None = None
        self._pending: deque[_Pending] = deque()
        self._current: _Running | None = None
        self._unreported: dict[str, Any] | None = None  # last finished action not yet reported
        self._armed: dict[str, tuple[int, A.ReceiveDigits]] = {}  # call_id -> ReceiveDigits
        self._bridged: tuple[str, str] | None = None
        self._ring_deadline: float | None = None
        self._outbound_deadline: float | None = None
        self._seq = 0
        self._next_action_id = 1
        self._next_invocation_id = 1
        self._clock: tuple[float, int] = (0.0, 0)  # (now, epoch ms) at the start
        self._now = 0.0  # of the input being handled
        self.stats = SessionStats()

    # -------------------------------------------------------------------------------- public API
    def handle(self, event: V.Event, now: float) -> None:
        """Take one input; effects become available through :meth:`next_effect`."""
        self._now = now
        if self._ended:
            log.debug("transaction %s is over; ignoring %s", self.transaction_id, type(event).__name__)
            return
        if not self._started and not isinstance(event, V.InboundCall | V.OutboundCall):
            log.warning("transaction %s: %s before the call started; ignored", self.transaction_id,
                        type(event).__name__)
            return
        match event:
            case V.InboundCall():
                self._on_inbound(event, now)
            case V.OutboundCall():
                self._on_outbound(event, now)
            case V.LegRinging():
                self._on_ringing(event)
            case V.LegAnswered():
                self._on_answered(event)
            case V.LegFailed():
                self._on_leg_failed(event.call_id, event.sip_code)
            case V.LegHungUp():
                self._on_hung_up(event)
            case V.DigitsReceived():
                self._on_digits(event)
            case V.ActionSucceeded():
                self._on_action_done(event.action_id, result=event.result)
            case V.ActionFailed():
                self._on_action_done(event.action_id, error=(event.error_type, event.error_message))
            case V.ActionInterrupted():
                self._on_action_interrupted(event.action_id)
            case V.HandlerResponded():
                self._on_response(event, now)
            case V.HandlerFailed():
                self._on_handler_failed(event.invocation_id, f"{event.error}: {event.message}", now)
            case V.CallUpdateRequested():
                self._on_call_update(event)
        self._settle(now)

    def get_timer(self) -> float | None:
        """The earliest ``now`` at which :meth:`handle_timer` must be called, or None."""
        if self._ended:
            return None
        times = [self._ring_deadline, self._outbound_deadline]
        if self._inflight is not None:
            times.append(self._inflight.deadline)
        if self._current is not None:
            times.append(self._current.dial_deadline)
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def handle_timer(self, now: float) -> None:
        """Run what is due at ``now`` (calling it early or twice is harmless)."""
        self._now = now
        if self._ended:
            return
        if self._inflight is not None and now >= self._inflight.deadline:
            self._on_handler_failed(self._inflight.invocation_id, "timeout", now)
        cur = self._current
        if self._ring_deadline is not None and now >= self._ring_deadline:
            self._ring_deadline = None
            a = self._leg_by_tag("LEG-A")
            if cur is not None and cur.dial_deadline is not None:  # LEG-A rings on while LEG-B is dialled
                self._ring_deadline = cur.dial_deadline
            elif a is not None and a.state is _LegState.OFFERED:
                log.info("transaction %s: not answered after %.0f s; rejecting", self.transaction_id,
                         self.config.ring_timeout_s)
                self._leg_gone(a, 480, hang_up=True)
        if self._outbound_deadline is not None and now >= self._outbound_deadline:
            self._outbound_deadline = None
            a = self._leg_by_tag("LEG-A")
            if a is not None and a.state is _LegState.DIALING:
                self._emit(E.HangupLeg(a.call_id, 0))
                self._leg_gone(a, 480, hang_up=False)
        if cur is not None and cur is self._current and cur.dial_deadline is not None and now >= cur.dial_deadline:
            assert cur.dial_call_id is not None
            self._emit(E.HangupLeg(cur.dial_call_id, 0))
            self._dial_failed(cur)
        self._settle(now)

    def next_effect(self) -> E.Effect | None:
        """The next effect to carry out, in order, or None."""
        return self._effects.popleft() if self._effects else None

    def drain(self) -> list[E.Effect]:
        """All pending effects, in order."""
        out = list(self._effects)
        self._effects.clear()
        return out

    @property
    def ended(self) -> bool:
        """True once EndTransaction was emitted; further events are ignored."""
        return self._ended

    @property
    def transaction_attributes(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._attributes))  # type: ignore[no-any-return]

    def call_details(self) -> dict[str, Any]:
        """``CallDetails`` as the next invocation would carry them."""
        details: dict[str, Any] = {"TransactionId": self.transaction_id}
        if self._attributes:
            details["TransactionAttributes"] = json.loads(json.dumps(self._attributes))
        details["AwsAccountId"] = self.config.aws_account_id
        details["AwsRegion"] = self.config.aws_region
        if self.config.sip_rule_id is not None and not self._outbound:
            details["SipRuleId"] = self.config.sip_rule_id
        details["SipMediaApplicationId"] = self.config.sip_media_application_id
        legs = sorted((lg for lg in self._legs.values() if lg.listed), key=lambda lg: lg.tag)
        details["Participants"] = [lg.participant() for lg in legs]
        return details

    # -------------------------------------------------------------------------------- plumbing
    def _emit(self, effect: E.Effect) -> None:
        self._effects.append(effect)

    def _queue_invocation(self, inv: _Invocation, *, first: bool = False) -> None:
        if first:
            self._queue.appendleft(inv)
        else:
            self._queue.append(inv)

    def _leg_by_tag(self, tag: str) -> _Leg | None:
        return next((lg for lg in self._legs.values() if lg.tag == tag), None)

    def _live_legs(self) -> list[_Leg]:
        return [lg for lg in self._legs.values() if lg.live and lg.listed]

    def _epoch_ms(self, now: float) -> int:
        now0, ms0 = self._clock
        return ms0 + round((now - now0) * 1000)

    def _blocked(self) -> bool:
        """True while a response that may carry actions is awaited (it decides about the rest)."""
        if self._inflight is not None and not self._inflight.informational:
            return True
        return any(not inv.informational for inv in self._queue)

    def _settle(self, now: float) -> None:
        """Advance the action list and the invocation queue until nothing moves; maybe end."""
        if self._ended:
            return
        self._advance(now)
        self._pump(now)
        if self.ended:  # (the property: mypy keeps self._ended narrowed across the calls above)
            return
        if (self._started and not self._live_legs() and self._inflight is None and not self._queue
                and self._current is None):
            for call_id, (action_id, _) in list(self._armed.items()):
                self._emit(E.StopAction(action_id, call_id, E.StopReason.CANCEL))
            self._armed.clear()
            self._end("completed")

    def _end(self, reason: str) -> None:
        self._ended = True
        self._ring_deadline = self._outbound_deadline = None
        self._emit(E.EndTransaction(reason))
        log.info("transaction %s ended (%s) after %d invocations", self.transaction_id, reason,
                 self.stats.invocations)

    # -------------------------------------------------------------------------------- invocations
    def _pump(self, now: float) -> None:
        if self._inflight is not None or not self._queue or self._ended:
            return
        if self._seq >= self.config.max_invocations:
            log.warning("transaction %s: %d invocations; hanging up", self.transaction_id, self._seq)
            self._fail_call("invocation-limit")
            return
        inv = self._queue.popleft()
        self._seq += 1
        self.stats.invocations += 1
        payload: dict[str, Any] = {"SchemaVersion": "1.0", "Sequence": self._seq,
                                   "InvocationEventType": inv.event_type}
        if inv.action_data is not None:
            payload["ActionData"] = inv.action_data
        payload["CallDetails"] = self.call_details()
        if inv.error is not None:
            payload["ErrorType"], payload["ErrorMessage"] = inv.error
        inv.payload = payload
        self._dispatch(inv, 1, now)

    def _dispatch(self, inv: _Invocation, attempt: int, now: float) -> None:
        assert inv.payload is not None
        inv.invocation_id = self._next_invocation_id
        self._next_invocation_id += 1
        inv.attempt = attempt
        inv.deadline = now + self.config.handler_timeout_s
        self._inflight = inv
        self._emit(E.InvokeHandler(inv.invocation_id, json.loads(json.dumps(inv.payload)), inv.deadline,
                                   self.config.handler_timeout_s, attempt))

    def _on_handler_failed(self, invocation_id: int, why: str, now: float) -> None:
        inv = self._inflight
        if inv is None or inv.invocation_id != invocation_id:
            return
        log.warning("transaction %s: %s invocation (Sequence %s, attempt %d) failed: %s", self.transaction_id,
                    inv.event_type, inv.payload and inv.payload.get("Sequence"), inv.attempt, why)
        if inv.attempt == 1:
            self.stats.retries += 1
            self._dispatch(inv, 2, now)
        else:
            self._fail_call("handler-failed")

    def _fail_call(self, reason: str) -> None:
        """The handler cannot be reached (or would loop forever): hang up everything with 480."""
        self._queue.clear()
        self._inflight = None
        self._pending.clear()
        if self._bridged is not None:
            self._emit(E.UnbridgeLegs(*self._bridged))
            self._bridged = None
        cur, self._current = self._current, None
        if cur is not None and not isinstance(cur.action, A.CallAndBridge):  # a dialled LEG-B is hung up below
            self._emit(E.StopAction(cur.action_id, cur.action.call_id, E.StopReason.CANCEL))
        for call_id, (action_id, _) in list(self._armed.items()):
            self._emit(E.StopAction(action_id, call_id, E.StopReason.CANCEL))
        self._armed.clear()
        for leg in self._legs.values():
            if leg.live:
                self._emit(E.HangupLeg(leg.call_id, 480))
                leg.state = _LegState.DISCONNECTED
        self._end(reason)

    def _on_response(self, ev: V.HandlerResponded, now: float) -> None:
        inv = self._inflight
        if inv is None or inv.invocation_id != ev.invocation_id:
            log.debug("transaction %s: late or unknown response %d ignored", self.transaction_id, ev.invocation_id)
            return
        self._inflight = None
        result = validate_response(ev.response, self._attributes)
        use_actions = not inv.informational and bool(self._live_legs())
        if isinstance(result, InvalidResponse):
            self.stats.invalid_responses += 1
            log.warning("transaction %s: invalid response to %s: %s: %s", self.transaction_id, inv.event_type,
                        result.error_type, result.error_message)
            if use_actions:
                self._queue_invocation(_Invocation("INVALID_LAMBDA_RESPONSE", None, inv.about,
                                                   interrupting=inv.interrupting,
                                                   error=(result.error_type, result.error_message)), first=True)
            return
        if result.attributes is not None:
            self._attributes = json.loads(json.dumps(result.attributes))
        if not use_actions or not result.actions:
            return  # absent, null or []: pending actions continue
        cur = self._current
        if inv.interrupting and cur is not None and cur.action.INTERRUPTIBLE:
            self._current = None
            self._emit(E.StopAction(cur.action_id, cur.action.call_id, E.StopReason.INTERRUPT))
            self._queue_invocation(_Invocation("ACTION_INTERRUPTED", cur.action.action_data(), cur.action.call_id,
                                               informational=True))
        self._pending = deque(_Pending(raw, inv.about) for raw in result.actions)
        self._unreported = None

    # -------------------------------------------------------------------------------- the action list
    def _parse_context(self, default_call_id: str | None) -> ParseContext:
        return ParseContext(
            legs=tuple(LegView(lg.call_id, lg.tag, lg.live) for lg in self._legs.values() if lg.listed),
            default_call_id=default_call_id,
            max_record_duration_s=self.config.max_record_duration_s,
            buckets=self.config.buckets)

    def _advance(self, now: float) -> None:
        while not self._ended and self._current is None and not self._blocked():
            if not self._live_legs():
                self._pending.clear()
                self._unreported = None
                return
            if not self._pending:
                if self._unreported is not None:
                    data, self._unreported = self._unreported, None
                    about = data["Parameters"].get("CallId")
                    self._queue_invocation(_Invocation("ACTION_SUCCESSFUL", data, about))
                return
            item = self._pending.popleft()
            parsed = parse_action(item.raw, self._parse_context(item.default_call_id))
            if isinstance(parsed, ActionError):
                self._fail_list(parsed.action_data(), parsed.call_id or item.default_call_id)
                return
            self._start(parsed, now)

    def _fail_list(self, action_data: dict[str, Any], about: str | None) -> None:
        self.stats.action_failures += 1
        log.info("transaction %s: %s failed: %s: %s", self.transaction_id, action_data.get("Type"),
                 action_data.get("ErrorType"), action_data.get("ErrorMessage"))
        self._pending.clear()
        self._unreported = None
        self._queue_invocation(_Invocation("ACTION_FAILED", action_data, about))

    def _answer_if_offered(self, leg: _Leg) -> None:
        if leg.state is _LegState.OFFERED:
            self._emit(E.AnswerLeg(leg.call_id))
            leg.state = _LegState.CONNECTED
            if leg.tag == "LEG-A":
                self._ring_deadline = None

    def _start(self, action: A.Action, now: float) -> None:
        leg = self._legs[action.call_id]
        match action:
            case A.Answer():
                self._answer_if_offered(leg)
                self._unreported = action.action_data()
            case A.Hangup():
                self._unreported = None
                self._leg_gone(leg, action.sip_code, hang_up=True,
                               parameters={**action.parameters, "ParticipantTag": leg.tag})
            case A.VoiceFocus() if leg.state is not _LegState.CONNECTED:
                self._fail_list({**action.action_data(), "ErrorType": A.CALL_NOT_ANSWERED,
                                 "ErrorMessage": A.MSG_CALL_NOT_ANSWERED}, leg.call_id)
            case A.ReceiveDigits():
                self._answer_if_offered(leg)
                old = self._armed.pop(leg.call_id, None)
                if old is not None:
                    self._emit(E.StopAction(old[0], leg.call_id, E.StopReason.CANCEL))
                action_id = self._new_action_id()
                self._armed[leg.call_id] = (action_id, action)
                self._emit(E.StartAction(action_id, action))
                self._unreported = {**action.action_data(), "ReceivedDigits": ""}
            case A.CallAndBridge():
                self._start_bridge(action, leg, now)
            case _:
                if action.ANSWERS:
                    self._answer_if_offered(leg)
                action_id = self._new_action_id()
                self._current = _Running(action_id, action)
                self._emit(E.StartAction(action_id, action))

    def _new_action_id(self) -> int:
        action_id = self._next_action_id
        self._next_action_id += 1
        self.stats.actions_started += 1
        return action_id

    def _on_action_done(self, action_id: int, *, result: Mapping[str, Any] | None = None,
                        error: tuple[str, str] | None = None) -> None:
        cur = self._current
        if cur is None or cur.action_id != action_id or isinstance(cur.action, A.CallAndBridge):
            armed = next(((cid, a) for cid, (aid, a) in self._armed.items() if aid == action_id), None)
            if armed is not None and error is not None:
                log.warning("transaction %s: ReceiveDigits on %s stopped: %s", self.transaction_id, armed[0], error)
                del self._armed[armed[0]]
            return
        self._current = None
        data = cur.action.action_data()
        if error is not None:
            self._fail_list({**data, "ErrorType": error[0], "ErrorMessage": error[1]}, cur.action.call_id)
        else:
            for k, v in (result or {}).items():
                if k in ("Type", "Parameters", "ErrorType", "ErrorMessage"):
                    continue
                try:
                    json.dumps(v, allow_nan=False)
                except (ValueError, TypeError, RecursionError):
                    log.error("transaction %s: result field %r of %s is not JSON; dropped", self.transaction_id, k,
                              cur.action.TYPE)
                    continue
                data[str(k)] = A._copy_json(v)
            if cur.action.REPORTS:
                self._unreported = None
                self._queue_invocation(_Invocation("ACTION_SUCCESSFUL", data, cur.action.call_id))
            else:
                self._unreported = data
        if cur.deferred_hangup is not None:
            self._queue_invocation(cur.deferred_hangup)

    def _on_action_interrupted(self, action_id: int) -> None:
        cur = self._current
        if cur is None or cur.action_id != action_id or isinstance(cur.action, A.CallAndBridge):
            return
        self._current = None
        self._queue_invocation(_Invocation("ACTION_INTERRUPTED", cur.action.action_data(), cur.action.call_id,
                                           informational=True))
        if cur.deferred_hangup is not None:
            self._queue_invocation(cur.deferred_hangup)

    # -------------------------------------------------------------------------------- CallAndBridge
    def _start_bridge(self, action: A.CallAndBridge, a: _Leg, now: float) -> None:
        b = self._leg_by_tag("LEG-B")
        if b is not None and b.live:
            self._fail_list({**action.action_data(), "ErrorType": A.SYSTEM_EXCEPTION,
                             "ErrorMessage": "CallAndBridge is not possible: the call already has a LEG-B."},
                            a.call_id)
            return
        if b is not None:
            del self._legs[b.call_id]  # a new LEG-B replaces the one that hung up
        if action.ringback is not None:
            self._answer_if_offered(a)
        b_id = self._new_call_id()
        self._legs[b_id] = _Leg(b_id, "LEG-B", "Outbound", action.caller_id, action.endpoint.uri,
                                self._epoch_ms(now), {}, _LegState.DIALING, listed=False)
        action_id = self._new_action_id()
        self._current = _Running(action_id, action, dial_call_id=b_id, dial_deadline=now + action.timeout_s)
        self._emit(E.DialLeg(b_id, action.endpoint, action.caller_id, float(action.timeout_s),
                             dict(action.sip_headers), action.ringback,
                             a.call_id if action.ringback is not None else None))

    def _dial_failed(self, cur: _Running) -> None:
        assert cur.dial_call_id is not None
        self._legs.pop(cur.dial_call_id, None)
        self._current = None
        a = self._legs.get(cur.action.call_id)
        if a is not None and a.state is _LegState.OFFERED:  # still ringing: the handler gets a new 30 s
            self._ring_deadline = self._now + self.config.ring_timeout_s
        self._fail_list({**cur.action.action_data(), "ErrorType": A.CALL_NOT_ANSWERED,
                         "ErrorMessage": A.MSG_CALL_NOT_ANSWERED}, cur.action.call_id)

    # -------------------------------------------------------------------------------- line events
    def _on_inbound(self, ev: V.InboundCall, now: float) -> None:
        if self._started:
            log.warning("transaction %s: second InboundCall ignored", self.transaction_id)
            return
        self._started = True
        self._clock = (now, ev.start_time_ms)
        self._legs[ev.call_id] = _Leg(ev.call_id, "LEG-A", "Inbound", ev.from_number, ev.to_number,
                                      ev.start_time_ms, dict(ev.sip_headers), _LegState.OFFERED)
        self._ring_deadline = now + self.config.ring_timeout_s
        self._queue_invocation(_Invocation("NEW_INBOUND_CALL", None, ev.call_id))

    def _on_outbound(self, ev: V.OutboundCall, now: float) -> None:
        if self._started:
            log.warning("transaction %s: second OutboundCall ignored", self.transaction_id)
            return
        self._started = True
        self._outbound = True
        self._clock = (now, ev.start_time_ms)
        self._legs[ev.call_id] = _Leg(ev.call_id, "LEG-A", "Outbound", ev.from_number, ev.to_number,
                                      ev.start_time_ms, dict(ev.sip_headers), _LegState.DIALING)
        self._outbound_deadline = now + ev.timeout_s
        self._emit(E.DialLeg(ev.call_id, A.BridgeEndpoint("PSTN", ev.to_number), ev.from_number, ev.timeout_s,
                             dict(ev.sip_headers)))
        self._queue_invocation(_Invocation("NEW_OUTBOUND_CALL", None, ev.call_id, informational=True))

    def _on_ringing(self, ev: V.LegRinging) -> None:
        leg = self._legs.get(ev.call_id)
        if leg is not None and leg.tag == "LEG-A" and leg.state is _LegState.DIALING and not leg.rang:
            leg.rang = True
            self._queue_invocation(_Invocation("RINGING", None, leg.call_id, informational=True))

    def _on_answered(self, ev: V.LegAnswered) -> None:
        leg = self._legs.get(ev.call_id)
        if leg is None or leg.state in (_LegState.CONNECTED, _LegState.DISCONNECTED):
            return
        if leg.state is _LegState.OFFERED:  # the runtime answered by itself: nothing to ask for
            leg.state = _LegState.CONNECTED
            if leg.tag == "LEG-A":
                self._ring_deadline = None
            return
        cur = self._current
        if cur is not None and cur.dial_call_id == leg.call_id:
            assert isinstance(cur.action, A.CallAndBridge)
            a = self._legs[cur.action.call_id]
            leg.state = _LegState.CONNECTED
            leg.listed = True
            self._answer_if_offered(a)
            self._bridged = (a.call_id, leg.call_id)
            self._emit(E.BridgeLegs(a.call_id, leg.call_id))
            self._current = None
            self._unreported = None
            self._queue_invocation(_Invocation("ACTION_SUCCESSFUL", cur.action.action_data(), a.call_id))
            return
        if leg.tag == "LEG-A" and self._outbound:
            leg.state = _LegState.CONNECTED
            self._outbound_deadline = None
            self._queue_invocation(_Invocation("CALL_ANSWERED", None, leg.call_id))

    def _on_leg_failed(self, call_id: str, sip_code: int) -> None:
        leg = self._legs.get(call_id)
        if leg is None or not leg.live:
            return
        cur = self._current
        if cur is not None and cur.dial_call_id == call_id:
            self._dial_failed(cur)
            return
        if leg.tag == "LEG-A" and leg.state is _LegState.DIALING:
            self._outbound_deadline = None
        self._leg_gone(leg, sip_code, hang_up=False)

    def _on_hung_up(self, ev: V.LegHungUp) -> None:
        leg = self._legs.get(ev.call_id)
        if leg is None or not leg.live:
            return
        if leg.state is _LegState.DIALING:
            self._on_leg_failed(ev.call_id, ev.sip_code)
            return
        self._leg_gone(leg, ev.sip_code, hang_up=False)

    def _leg_gone(self, leg: _Leg, sip_code: int, *, hang_up: bool,
                  parameters: Mapping[str, Any] | None = None) -> None:
        """A leg ended (remote hang-up, Hangup action, ring timeout): clean up, then HANGUP."""
        if hang_up:
            self._emit(E.HangupLeg(leg.call_id, sip_code))
        leg.state = _LegState.DISCONNECTED
        if leg.tag == "LEG-A":
            self._ring_deadline = None
        if self._bridged is not None and leg.call_id in self._bridged:
            self._emit(E.UnbridgeLegs(*self._bridged))
            self._bridged = None
        armed = self._armed.pop(leg.call_id, None)
        if armed is not None:
            self._emit(E.StopAction(armed[0], leg.call_id, E.StopReason.CANCEL))
        params = dict(parameters) if parameters is not None else {
            "SipResponseCode": sip_code, "CallId": leg.call_id, "ParticipantTag": leg.tag}
        hangup: _Invocation | None = _Invocation("HANGUP", {"Type": "Hangup", "Parameters": params}, leg.call_id)
        cur = self._current
        if cur is not None and cur.action.call_id == leg.call_id:
            if isinstance(cur.action, A.CallAndBridge):
                assert cur.dial_call_id is not None
                self._emit(E.HangupLeg(cur.dial_call_id, 0))
                self._legs.pop(cur.dial_call_id, None)
                self._current = None
            elif isinstance(cur.action, A.RecordAudio):
                self._emit(E.StopAction(cur.action_id, leg.call_id, E.StopReason.HANGUP))
                cur.deferred_hangup, hangup = hangup, None
            else:
                self._emit(E.StopAction(cur.action_id, leg.call_id, E.StopReason.CANCEL))
                self._current = None
        if not self._live_legs():
            self._pending.clear()
            self._unreported = None
        if hangup is not None:
            self._queue_invocation(hangup)

    # -------------------------------------------------------------------------------- digits, API
    def _on_digits(self, ev: V.DigitsReceived) -> None:
        for call_id, (action_id, action) in self._armed.items():
            if action_id == ev.action_id:
                data = {**action.action_data(), "ReceivedDigits": ev.digits}
                self._queue_invocation(_Invocation("DIGITS_RECEIVED", data, call_id))
                return

    def _on_call_update(self, ev: V.CallUpdateRequested) -> None:
        live = self._live_legs()
        if not live:
            log.info("transaction %s: CallUpdateRequested with no leg left; ignored", self.transaction_id)
            return
        about = min(live, key=lambda lg: lg.tag).call_id
        data = {"Type": "CallUpdateRequest", "Parameters": {"Arguments": {str(k): v for k, v in ev.arguments.items()}}}
        self._queue_invocation(_Invocation("CALL_UPDATE_REQUESTED", data, about, interrupting=True))
