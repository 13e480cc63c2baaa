"""Transcript harness for the SMA engine: feed events with a virtual clock, collect effects.

Expected payloads are written out in full with :func:`event` so that a test reads like a Chime log.
"""

from __future__ import annotations

from itertools import count
from typing import Any, TypeVar

from gatewayd.sma import Session, SessionConfig
from gatewayd.sma import effects as E
from gatewayd.sma import events as V

TX = "tx-0001"
A_ID = "call-a"
START_MS = 1_700_000_000_000
T0 = 100.0
CALLER = "+15550199"
CALLED = "+15550100"

CONFIG = SessionConfig(sip_media_application_id="sma-0001", aws_account_id="111122223333", aws_region="us-east-1",
                       sip_rule_id="rule-0001")

EffT = TypeVar("EffT")


def leg_a(status: str | None = None, **extra: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"CallId": A_ID, "ParticipantTag": "LEG-A", "To": CALLED, "From": CALLER,
                         "Direction": "Inbound", "StartTimeInMilliseconds": str(START_MS)}
    if status is not None:
        p["Status"] = status
    p.update(extra)
    return p


def leg_b(status: str, *, call_id: str = "call-b-1", to: str = "+15550123", caller: str = CALLED,
          start_ms: int = START_MS) -> dict[str, Any]:
    return {"CallId": call_id, "ParticipantTag": "LEG-B", "To": to, "From": caller, "Direction": "Outbound",
            "StartTimeInMilliseconds": str(start_ms), "Status": status}


def details(*participants: dict[str, Any], attributes: dict[str, Any] | None = None,
            rule: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {"TransactionId": TX}
    if attributes is not None:
        d["TransactionAttributes"] = attributes
    d.update({"AwsAccountId": "111122223333", "AwsRegion": "us-east-1"})
    if rule:
        d["SipRuleId"] = "rule-0001"
    d["SipMediaApplicationId"] = "sma-0001"
    d["Participants"] = list(participants)
    return d


def event(seq: int, type_: str, *participants: dict[str, Any], action_data: dict[str, Any] | None = None,
          attributes: dict[str, Any] | None = None, error: tuple[str, str] | None = None,
          rule: bool = True) -> dict[str, Any]:
    """The exact payload of an invocation."""
    e: dict[str, Any] = {"SchemaVersion": "1.0", "Sequence": seq, "InvocationEventType": type_}
    if action_data is not None:
        e["ActionData"] = action_data
    e["CallDetails"] = details(*participants, attributes=attributes, rule=rule)
    if error is not None:
        e["ErrorType"], e["ErrorMessage"] = error
    return e


def response(*actions: dict[str, Any], attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"SchemaVersion": "1.0", "Actions": list(actions)}
    if attributes is not None:
        r["TransactionAttributes"] = attributes
    return r


# ------------------------------------------------------------------------------------------ actions
def s3(key: str, bucket: str = "prompts") -> dict[str, Any]:
    return {"Type": "S3", "BucketName": bucket, "Key": key}


def play(key: str = "prompt.wav", **params: Any) -> dict[str, Any]:
    return {"Type": "PlayAudio", "Parameters": {"AudioSource": s3(key), **params}}


def pause(ms: Any = 500, **params: Any) -> dict[str, Any]:
    return {"Type": "Pause", "Parameters": {"DurationInMilliseconds": ms, **params}}


def record(**params: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"RecordingTerminators": ["#"],
                         "RecordingDestination": {"Type": "S3", "BucketName": "recordings", "Prefix": "vm"}}
    p.update(params)
    return {"Type": "RecordAudio", "Parameters": p}


def hangup(**params: Any) -> dict[str, Any]:
    return {"Type": "Hangup", "Parameters": params}


def receive_digits(**params: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"InputDigitsRegex": r"^\d{2}#$", "InBetweenDigitsDurationInMilliseconds": 1000,
                         "FlushDigitsDurationInMilliseconds": 10000}
    p.update(params)
    return {"Type": "ReceiveDigits", "Parameters": p}


def bridge(uri: str = "+15550123", **params: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"CallerIdNumber": CALLED, "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": uri}]}
    p.update(params)
    return {"Type": "CallAndBridge", "Parameters": p}


# ------------------------------------------------------------------------------------------ the call
def only(effects: list[E.Effect], cls: type[EffT]) -> EffT:
    found = [e for e in effects if isinstance(e, cls)]
    assert len(found) == 1, f"expected one {cls.__name__} in {effects}"
    return found[0]


def of(effects: list[E.Effect], cls: type[EffT]) -> list[EffT]:
    return [e for e in effects if isinstance(e, cls)]


class Call:
    """A session driven on a virtual clock; ``log`` keeps every effect."""

    def __init__(self, config: SessionConfig = CONFIG) -> None:
        ids = count(1)
        self.session = Session(config, TX, new_call_id=lambda: f"call-b-{next(ids)}")
        self.now = T0
        self.log: list[E.Effect] = []

    def feed(self, ev: V.Event, dt: float = 0.0) -> list[E.Effect]:
        self.now += dt
        self.session.handle(ev, self.now)
        out = self.session.drain()
        self.log += out
        return out

    def timer(self, dt: float) -> list[E.Effect]:
        self.now += dt
        self.session.handle_timer(self.now)
        out = self.session.drain()
        self.log += out
        return out

    def start(self, headers: dict[str, str] | None = None) -> E.InvokeHandler:
        out = self.feed(V.InboundCall(A_ID, CALLER, CALLED, START_MS, headers or {}))
        assert len(out) == 1
        return only(out, E.InvokeHandler)

    def reply(self, inv: E.InvokeHandler, resp: Any, dt: float = 0.0) -> list[E.Effect]:
        return self.feed(V.HandlerResponded(inv.invocation_id, resp), dt)

    def actions(self, inv: E.InvokeHandler, *actions: dict[str, Any], dt: float = 0.0,
                attributes: dict[str, Any] | None = None) -> list[E.Effect]:
        return self.reply(inv, response(*actions, attributes=attributes), dt)

    def succeed(self, start: E.StartAction, result: dict[str, Any] | None = None, dt: float = 0.0) -> list[E.Effect]:
        return self.feed(V.ActionSucceeded(start.action_id, result or {}), dt)

    def fail(self, start: E.StartAction, error_type: str, message: str, dt: float = 0.0) -> list[E.Effect]:
        return self.feed(V.ActionFailed(start.action_id, error_type, message), dt)

    def hang_up(self, call_id: str = A_ID, code: int = 0, dt: float = 0.0) -> list[E.Effect]:
        return self.feed(V.LegHungUp(call_id, code), dt)

    def bridged(self) -> tuple[E.InvokeHandler, E.DialLeg]:
        """NEW_INBOUND_CALL → [CallAndBridge] → LEG-B answers; returns the ACTION_SUCCESSFUL invocation."""
        out = self.actions(self.start(), bridge())
        dial = only(out, E.DialLeg)
        out = self.feed(V.LegAnswered(dial.call_id), dt=1.0)
        return only(out, E.InvokeHandler), dial
