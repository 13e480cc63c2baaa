"""Calls: each one an SMA :class:`~gatewayd.sma.session.Session` whose effects are carried out here.

Everything in this module runs on the control loop (asyncio). Line events arrive from driver threads
through :meth:`CallManager.sink_for`; media results come from the media worker through
``call_soon_threadsafe``. A :class:`Call` feeds both to its session with the clock's ``now`` and
executes the effects that come out: handler invocations, answers, actions on legs, outbound legs,
bridges, hang-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from drivers.line import (
    Answered,
    CallerIdReceived,
    CallFailed,
    DigitReceived,
    EventSink,
    IncomingCall,
    Line,
    LineError,
    LineEvent,
    LineStatus,
    RemoteHangup,
    Ringing,
)
from gatewayd.config import ApplicationConfig, application_id, rule_id
from gatewayd.invokers import Invoker, as_event
from gatewayd.runtime import executors as X
from gatewayd.runtime.legmedia import LegMedia
from gatewayd.runtime.ops import CallRecordingOp
from gatewayd.runtime.routing import Route, Router
from gatewayd.runtime.services import MediaFactories, Prompts
from gatewayd.runtime.worker import Activity, MediaWorker
from gatewayd.sma import actions as A
from gatewayd.sma import effects as E
from gatewayd.sma import events as V
from gatewayd.sma.session import Session, SessionConfig
from gatewayd.store import RecordingStore

log = logging.getLogger(__name__)

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float: ...

    def call_at(self, when: float, fn: Callable[[], None]) -> asyncio.TimerHandle | Any: ...


class LoopClock:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def now(self) -> float:
        return self.loop.time()

    def call_at(self, when: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_at(when, fn)


@dataclass
class Services:
    invoker_for: Callable[[ApplicationConfig], Invoker]
    prompts: Prompts
    store: RecordingStore
    media: MediaFactories = field(default_factory=MediaFactories)
    max_record_s: int = 3600
    ring_timeout_s: float = 30.0
    on_call_end: Callable[[Call, str], None] | None = None
    on_invocation: Callable[[Call, Mapping[str, Any], Any], None] | None = None  # transcript hook


@dataclass
class LegState:
    call_id: str
    line: Line
    line_name: str
    leg_id: str
    media: LegMedia
    direction: str  # "Inbound" / "Outbound"
    answered: bool = False
    gone: bool = False
    ringback: asyncio.Task[Any] | None = None
    call_recording: CallRecordingOp | None = None


ActionExecutor = Callable[..., Coroutine[Any, Any, X.Result]]
EXECUTORS: dict[type[A.Action], ActionExecutor] = {
    A.Pause: X.pause,
    A.PlayAudio: X.play_audio,
    A.PlayAudioAndGetDigits: X.play_audio_and_get_digits,
    A.Speak: X.speak,
    A.SpeakAndGetDigits: X.speak_and_get_digits,
    A.SendDigits: X.send_digits,
    A.RecordAudio: X.record_audio,
    A.VoiceFocus: X.voice_focus,
    A.StartCallRecording: X.start_call_recording,
    A.StopCallRecording: X.stop_call_recording,
    A.PauseCallRecording: X.pause_call_recording,
    A.ResumeCallRecording: X.resume_call_recording,
}


class Call:
    def __init__(self, mgr: CallManager, route: Route, app_index: int, transaction_id: str | None = None) -> None:
        self.mgr = mgr
        self.route = route
        self.app_index = app_index
        self.app = route.applications[app_index]
        self.transaction_id = transaction_id or str(uuid.uuid4())
        self.loop = mgr.loop
        self.services = mgr.services
        self.invoker = self.services.invoker_for(self.app)
        self.session = Session(SessionConfig(
            sip_media_application_id=application_id(self.app), aws_account_id=self.app.aws_account_id,
            aws_region=self.app.aws_region, sip_rule_id=rule_id(route.rule), handler_timeout_s=self.app.timeout_s,
            ring_timeout_s=self.services.ring_timeout_s, max_record_duration_s=self.services.max_record_s,
        ), self.transaction_id)
        self.legs: dict[str, LegState] = {}
        self.actions: dict[int, asyncio.Task[Any]] = {}
        self.invocations: dict[int, asyncio.Task[Any]] = {}
        self._timer: Any = None
        self._bg: set[asyncio.Task[Any]] = set()
        self.ended = False
        self.end_reason = ""
        self.inbound: IncomingCall | None = None
        self.started_at = time.time()
        self.log = logging.LoggerAdapter(log, {"TRANSACTION_ID": self.transaction_id})

    # ------------------------------------------------------------------ inputs
    def start_inbound(self, ev: IncomingCall, line: Line, call_id: str | None = None) -> None:
        self.inbound = ev
        call_id = call_id or str(uuid.uuid4())
        leg = self.mgr.new_leg(self, call_id, line, ev.line, ev.leg_id, "Inbound")
        self.log = logging.LoggerAdapter(log, {"TRANSACTION_ID": self.transaction_id, "LINE": ev.line,
                                               "CALL_ID": leg.call_id})
        self.feed(V.InboundCall(call_id=call_id, from_number=ev.caller, to_number=ev.called,
                                start_time_ms=int(self.started_at * 1000), sip_headers=dict(ev.headers)))

    def feed(self, event: V.Event) -> None:
        if self.session.ended:
            return
        try:
            self.session.handle(event, self.mgr.clock.now())
        except Exception:  # the engine must never raise; if it does, end the call cleanly
            self.log.exception("SMA engine failed on %s", type(event).__name__)
            self._abort("engine-error")
            return
        self.pump()

    def on_line_event(self, leg: LegState, ev: LineEvent) -> None:
        match ev:
            case RemoteHangup(sip_code=code, reason=reason, tail_start_pts=tail):
                self.log.info("leg %s hung up (%s)", leg.call_id, reason or code)
                self._leg_gone(leg, "hangup", tail)
                self.feed(V.LegHungUp(leg.call_id, code))
            case Answered():
                leg.answered = True
                self.feed(V.LegAnswered(leg.call_id))
            case Ringing():
                if leg.direction == "Outbound":
                    self.feed(V.LegRinging(leg.call_id))
            case CallFailed(sip_code=code, reason=reason):
                self.log.info("leg %s failed: %s %s", leg.call_id, code, reason)
                self._leg_gone(leg, "failed", None)
                self.feed(V.LegFailed(leg.call_id, code, reason))
            case DigitReceived(digit=d, source=src, start_pts=s, end_pts=e):
                leg.media.inject_digit(d, s, e, str(src))
            case CallerIdReceived():
                self.log.info("caller ID after the call was offered: %s", ev)

    def digits_received(self, action_id: int, digits: str) -> None:
        self.feed(V.DigitsReceived(action_id, digits))

    def update_requested(self, arguments: Mapping[str, str]) -> None:
        self.feed(V.CallUpdateRequested(arguments=dict(arguments)))

    # ------------------------------------------------------------------ effects
    def pump(self) -> None:
        effects = self.session.drain()
        failover = self._failover_target(effects)
        for eff in effects:
            if failover is not None and isinstance(eff, E.HangupLeg):
                continue  # the next application takes the call instead of it being rejected
            try:
                self.execute(eff)
            except Exception:
                self.log.exception("executing %s failed", type(eff).__name__)
        if failover is not None:
            self.mgr.fail_over(self, failover)
        self._schedule_timer()

    def _failover_target(self, effects: list[E.Effect]) -> int | None:
        ends = [e for e in effects if isinstance(e, E.EndTransaction)]
        if not ends or ends[0].reason != "handler-failed":
            return None
        inbound = next((leg for leg in self.legs.values() if leg.direction == "Inbound"), None)
        if inbound is None or inbound.answered or inbound.gone or self.app_index + 1 >= len(self.route.applications):
            return None
        return self.app_index + 1

    def execute(self, eff: E.Effect) -> None:
        match eff:
            case E.InvokeHandler():
                self.invocations[eff.invocation_id] = self._spawn(self._invoke(eff), counted=True)
            case E.AnswerLeg(call_id=cid):
                leg = self.legs[cid]
                leg.answered = True
                leg.line.answer(leg.leg_id, leg.media)
            case E.StartAction(action_id=aid, action=action):
                self.actions[aid] = self._spawn(self._run_action(aid, action))
            case E.StopAction(action_id=aid, reason=reason):
                task = self.actions.get(aid)
                if task is not None and reason != E.StopReason.HANGUP:
                    self.actions.pop(aid, None)
                    task.cancel()
            case E.DialLeg():
                self._dial(eff)
            case E.BridgeLegs(a=a, b=b):
                la, lb = self.legs[a], self.legs[b]
                self._stop_ringback(la)
                la.media.bridge(lb.media)
            case E.UnbridgeLegs(a=a):
                self.legs[a].media.unbridge()
            case E.HangupLeg(call_id=cid, sip_code=code):
                gone = self.legs.get(cid)
                if gone is not None and not gone.gone:
                    self._leg_gone(gone, "hangup", None)
                    try:
                        gone.line.hangup(gone.leg_id, code)
                    except LineError as e:
                        self.log.warning("hang-up of %s failed: %s", cid, e)
            case E.EndTransaction(reason=reason):
                self._finish(reason)

    def _spawn(self, coro: Coroutine[Any, Any, Any], counted: bool = False) -> asyncio.Task[Any]:
        """A task of this call. ``counted``: work that takes no media time (a handler invocation), which
        a virtual clock must wait for; actions are not counted, they advance with media time."""
        task = self.loop.create_task(coro)
        if counted:
            self.mgr.activity_begin()
            task.add_done_callback(lambda _t: self.mgr.activity_end())
        return task

    async def io(self, awaitable: Awaitable[T]) -> T:
        """Await I/O that takes no media time (fetching a prompt, opening a recording, the upload):
        a virtual clock waits for it, as a real call's audio would not."""
        self.mgr.activity_begin()
        try:
            return await awaitable
        finally:
            self.mgr.activity_end()

    def keep_task(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` to its end even if the call is over (recording uploads)."""
        t = self._spawn(coro)
        self._bg.add(t)
        self.mgr.background.add(t)
        t.add_done_callback(self._bg.discard)
        t.add_done_callback(self.mgr.background.discard)

    async def _invoke(self, eff: E.InvokeHandler) -> None:
        started = time.monotonic()
        result = await self.invoker.invoke_async(eff.payload, eff.timeout_s)
        ev = as_event(eff.invocation_id, result)
        if isinstance(ev, V.HandlerFailed):
            self.log.warning("handler invocation failed (%s): %s", ev.error, ev.message)
        self.mgr.observe_invocation(self, time.monotonic() - started, isinstance(ev, V.HandlerResponded))
        if self.services.on_invocation is not None:
            self.services.on_invocation(self, eff.payload, ev.response if isinstance(ev, V.HandlerResponded) else ev)
        self.invocations.pop(eff.invocation_id, None)
        self.feed(ev)

    async def _run_action(self, aid: int, action: A.Action) -> None:
        leg = self.legs.get(action.call_id)
        ev: V.Event
        try:
            if leg is None or leg.gone:
                ev = V.ActionFailed(aid, A.CALL_NOT_ANSWERED, A.MSG_CALL_NOT_ANSWERED)
            elif isinstance(action, A.ReceiveDigits):
                await X.receive_digits(self, leg, action, aid)
                return
            else:
                executor = EXECUTORS.get(type(action))
                if executor is None:
                    res: X.Result = X.failed(A.SYSTEM_EXCEPTION, A.msg_not_supported(action.TYPE))
                else:
                    res = await executor(self, leg, action)
                ev = dataclasses.replace(res, action_id=aid)
        except asyncio.CancelledError:
            return
        except Exception:
            self.log.exception("action %s failed", action.TYPE)
            ev = V.ActionFailed(aid, A.SYSTEM_EXCEPTION, A.MSG_SYSTEM_ERROR)
        self.actions.pop(aid, None)
        self.feed(ev)

    def send_digits_out_of_band(self, leg: LegState, digits: str, tone_ms: int) -> bool:
        if "," in digits:
            return False
        try:
            return bool(leg.line.send_digits(leg.leg_id, digits, tone_ms))
        except LineError:
            return False

    def _dial(self, eff: E.DialLeg) -> None:
        line_name, line = self.mgr.outbound_line(eff.endpoint)
        if line is None:
            self.loop.call_soon(self.feed, V.LegFailed(eff.call_id, 503, "no line can place outbound calls"))
            return
        leg = self.mgr.new_leg(self, eff.call_id, line, line_name, eff.call_id, "Outbound")
        try:
            line.dial(eff.call_id, eff.endpoint.uri, eff.caller_id, dict(eff.sip_headers), leg.media, eff.timeout_s)
        except LineError as e:
            self.log.warning("dial %s failed: %s", eff.endpoint.uri, e)
            leg.gone = True
            self.loop.call_soon(self.feed, V.LegFailed(eff.call_id, 503, str(e)))
            return
        if eff.ringback is not None and eff.ringback_to in self.legs:
            a = self.legs[eff.ringback_to]
            a.ringback = self._spawn(self._ringback(a, eff.ringback))

    async def _ringback(self, leg: LegState, source: A.AudioSource) -> None:
        try:
            samples = await self.io(self.services.prompts.load(source.bucket, source.key))
        except Exception as e:
            self.log.warning("ringback tone unavailable: %s", e)
            return
        await X.play(leg, samples, repeat=10**6)

    def _stop_ringback(self, leg: LegState) -> None:
        if leg.ringback is not None:
            leg.ringback.cancel()
            leg.ringback = None

    def _leg_gone(self, leg: LegState, reason: str, tail: int | None) -> None:
        if leg.gone:
            return
        leg.gone = True
        self._stop_ringback(leg)
        leg.media.end(reason, tail)
        self.mgr.forget_leg(leg)

    def _schedule_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = None if self.session.ended else self.session.get_timer()
        if when is not None:
            self._timer = self.mgr.clock.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self.session.ended:
            self.session.handle_timer(self.mgr.clock.now())
            self.pump()

    def _abort(self, reason: str) -> None:
        for leg in self.legs.values():
            if not leg.gone:
                self._leg_gone(leg, "hangup", None)
                with contextlib.suppress(LineError):
                    leg.line.hangup(leg.leg_id, 480 if not leg.answered else 0)
        self._finish(reason)

    def _finish(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.end_reason = reason
        if self._timer is not None:
            self._timer.cancel()
        for t in list(self.actions.values()) + list(self.invocations.values()):
            t.cancel()
        for leg in self.legs.values():
            if not leg.gone:
                self._leg_gone(leg, "ended", None)
        self.mgr.call_ended(self, reason)

    def status(self) -> dict[str, Any]:
        return {"transaction_id": self.transaction_id, "application": self.app.name,
                "age_s": round(time.time() - self.started_at, 1),
                "legs": [{"call_id": leg.call_id, "line": leg.line_name, "direction": leg.direction,
                          "answered": leg.answered, "gone": leg.gone, "rx_frames": leg.media.rx_frames,
                          "rx_dropped": leg.media.rx_dropped} for leg in self.legs.values()],
                "actions": len(self.actions)}


class CallManager:
    """All calls of the daemon: routes inbound calls, owns legs, counts outcomes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, lines: Mapping[str, Line], router: Router,
                 services: Services, worker: MediaWorker, clock: Clock | None = None,
                 activity: Activity | None = None, metrics: Any = None,
                 dtmf_inband: Mapping[str, bool] | None = None) -> None:
        self.loop = loop
        self.lines = dict(lines)
        self.router = router
        self.services = services
        self.worker = worker
        self.clock: Clock = clock or LoopClock(loop)
        self.activity = activity
        self.metrics = metrics
        self.dtmf_inband = dict(dtmf_inband or {})
        self.calls: dict[str, Call] = {}
        self._legs: dict[tuple[str, str], tuple[Call, LegState]] = {}
        self.background: set[asyncio.Task[Any]] = set()
        self.line_state: dict[str, str] = {}
        self.accepting = True
        self._dropped_done = 0

    # ------------------------------------------------------------------ driver side
    def sink_for(self, line_name: str) -> EventSink:
        """The event sink to give a line's ``start``: any thread may call it."""
        return self.threadsafe(self._dispatch)

    def _dispatch(self, ev: LineEvent) -> None:
        try:
            self.on_line_event(ev)
        except Exception:
            log.exception("line event %s could not be handled", type(ev).__name__)

    def on_line_event(self, ev: LineEvent) -> None:
        if isinstance(ev, LineStatus):
            self.line_state[ev.line] = ev.state
            log.info("line %s is %s %s", ev.line, ev.state, ev.detail, extra={"LINE": ev.line})
            return
        if isinstance(ev, IncomingCall):
            self._incoming(ev)
            return
        entry = self._legs.get((ev.line, ev.leg_id))
        if entry is None:
            log.debug("event for unknown leg %s/%s: %s", ev.line, ev.leg_id, type(ev).__name__)
            return
        call, leg = entry
        call.on_line_event(leg, ev)

    def _incoming(self, ev: IncomingCall) -> None:
        line = self.lines.get(ev.line)
        if line is None:
            log.error("incoming call on unknown line %s", ev.line)
            return
        route = self.router.route(ev.line, ev.called, ev.request_uri_host) if self.accepting else None
        if route is None or not route.applications:
            log.warning("no rule routes a call from %s to %s on %s: rejected", ev.caller, ev.called, ev.line,
                        extra={"LINE": ev.line})
            self.count_call(ev.line, "rejected")
            line.hangup(ev.leg_id, 404 if self.accepting else 503)
            return
        call = Call(self, route, 0)
        self.calls[call.transaction_id] = call
        call.start_inbound(ev, line)

    def fail_over(self, failed: Call, app_index: int) -> None:
        inbound = next(leg for leg in failed.legs.values() if leg.direction == "Inbound")
        assert failed.inbound is not None
        log.warning("application %s failed; call goes to %s", failed.app.name,
                    failed.route.applications[app_index].name)
        call = Call(self, failed.route, app_index)
        self.calls[call.transaction_id] = call
        call.start_inbound(failed.inbound, inbound.line)

    def new_leg(self, call: Call, call_id: str, line: Line, line_name: str, leg_id: str, direction: str) -> LegState:
        f = self.services.media
        want_inband = self.dtmf_inband.get(line_name, True)
        media = LegMedia(call_id, self.worker,
                         detector=f.dtmf_detector() if (f.dtmf_detector is not None and want_inband) else None,
                         suppressor_factory=f.suppressor)
        leg = LegState(call_id, line, line_name, leg_id, media, direction)
        call.legs[call_id] = leg
        self._legs[(line_name, leg_id)] = (call, leg)
        return leg

    def forget_leg(self, leg: LegState) -> None:
        if self._legs.pop((leg.line_name, leg.leg_id), None) is not None:
            self._dropped_done += leg.media.rx_dropped

    def frames_dropped(self) -> int:
        """Received frames dropped since start (ended legs and live ones)."""
        live = sum(leg.media.rx_dropped for c in self.calls.values() for leg in c.legs.values() if not leg.gone)
        return self._dropped_done + live

    def outbound_line(self, endpoint: A.BridgeEndpoint) -> tuple[str, Line | None]:
        """The line that places an outbound leg: the first SIP trunk (a virtual exchange in simulations)."""
        for kind in ("sip", "virtual"):
            for name, line in self.lines.items():
                if line.kind == kind:
                    return name, line
        return "", None

    def call_ended(self, call: Call, reason: str) -> None:
        self.calls.pop(call.transaction_id, None)
        for leg in call.legs.values():
            self.forget_leg(leg)
        first = next(iter(call.legs.values()), None)
        self.count_call(first.line_name if first else "", reason)
        if self.services.on_call_end is not None:
            self.services.on_call_end(call, reason)

    # ------------------------------------------------------------------ bookkeeping
    def threadsafe(self, fn: Callable[..., None]) -> Callable[..., None]:
        """Wrap ``fn`` so that any thread can call it; it runs on the control loop (and counts as work
        in flight for a virtual clock until it has run)."""
        def run(*args: Any) -> None:
            try:
                fn(*args)
            finally:
                self.loop.call_soon(self.activity_end)  # after the tasks ``fn`` woke have stepped

        def call(*args: Any) -> None:
            self.activity_begin()
            self.loop.call_soon_threadsafe(run, *args)
        return call

    def activity_begin(self) -> None:
        if self.activity is not None:
            self.activity.begin(loop=True)

    def activity_end(self) -> None:
        if self.activity is not None:
            self.activity.end()

    def count_call(self, line: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.calls.inc(line=line, outcome=outcome)

    def observe_invocation(self, call: Call, seconds: float, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.handler_latency.observe(seconds, application=call.app.name)
            if not ok:
                self.metrics.handler_errors.inc(application=call.app.name)

    def status(self) -> list[dict[str, Any]]:
        return [c.status() for c in self.calls.values()]

    async def drain(self, timeout: float) -> bool:
        """Graceful stop: refuse new calls, hang up live legs (recordings finish and upload), wait."""
        self.accepting = False
        for call in list(self.calls.values()):
            for leg in list(call.legs.values()):
                if not leg.gone:
                    call.on_line_event(leg, RemoteHangup(leg.line_name, leg.leg_id, 0, "shutdown"))
                    with contextlib.suppress(LineError):
                        leg.line.hangup(leg.leg_id, 503 if not leg.answered else 0)
        deadline = self.loop.time() + timeout
        while (self.calls or self.background) and self.loop.time() < deadline:
            await asyncio.sleep(0.05)
        return not self.calls and not self.background
