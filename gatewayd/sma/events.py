"""What the runtime tells a :class:`~gatewayd.sma.session.Session`: the engine's inputs.

Every input is a small frozen dataclass handed to ``Session.handle(event, now)``, where ``now`` is the
runtime's monotonic clock in seconds. Legs are named by their ``call_id`` (the Chime ``CallId``, a UUID
the runtime chose for an inbound leg, or the one the engine put in :class:`~gatewayd.sma.effects.DialLeg`
for an outbound one). Actions are named by the ``action_id`` of the
:class:`~gatewayd.sma.effects.StartAction` that started them; invocations by the ``invocation_id`` of the
:class:`~gatewayd.sma.effects.InvokeHandler` that asked for them. An input naming an action, invocation
or leg the engine no longer waits for (a result that raced a cancellation, a second hang-up) is
ignored, so the runtime never needs to filter races itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


# ------------------------------------------------------------------------------------------ call set-up
@dataclass(frozen=True)
class InboundCall:
    """A new inbound call was routed to this application: starts the transaction (NEW_INBOUND_CALL).

    ``start_time_ms`` is the wall clock (epoch ms) when the call arrived; it becomes LEG-A's
    ``StartTimeInMilliseconds`` and anchors the session's wall clock (later legs get
    ``start_time_ms + (now - now_at_start)``). ``sip_headers``: the ``X-`` headers (and User-to-User,
    Diversion) the leg carried; shown as ``SipHeaders`` when not empty.
    """

    call_id: str
    from_number: str
    to_number: str
    start_time_ms: int
    sip_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundCall:
    """Place an outbound call for this application (the CreateSipMediaApplicationCall case).

    Starts the transaction: the engine dials LEG-A (:class:`~gatewayd.sma.effects.DialLeg` with this
    ``call_id``) and sends NEW_OUTBOUND_CALL, then RINGING (response ignored), CALL_ANSWERED, or HANGUP
    with the failure code.
    """

    call_id: str
    from_number: str
    to_number: str
    start_time_ms: int
    sip_headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0


# ------------------------------------------------------------------------------------------ line events
@dataclass(frozen=True)
class LegRinging:
    """An outbound leg is ringing at the far end (180/183)."""

    call_id: str


@dataclass(frozen=True)
class LegAnswered:
    """An outbound leg was answered (for an inbound leg: the answer the engine asked for took place;
    optional, the engine already counts the leg as connected when it emits AnswerLeg)."""

    call_id: str


@dataclass(frozen=True)
class LegFailed:
    """An outbound leg did not connect (busy 486, no answer 480, 404, 503...), or an inbound leg
    could not be answered."""

    call_id: str
    sip_code: int
    reason: str = ""


@dataclass(frozen=True)
class LegHungUp:
    """A leg went away from the far end (BYE, CANCEL, on-hook, busy tone, RTP timeout...).

    ``sip_code`` becomes HANGUP's ``SipResponseCode`` (0 normal clearing).
    """

    call_id: str
    sip_code: int = 0


@dataclass(frozen=True)
class DigitsReceived:
    """The armed ReceiveDigits started as ``action_id`` matched ``digits`` (sends DIGITS_RECEIVED).

    The runtime keeps collecting for that ReceiveDigits until it is stopped.
    """

    action_id: int
    digits: str


# ------------------------------------------------------------------------------------------ action results
@dataclass(frozen=True)
class ActionSucceeded:
    """The runtime finished action ``action_id`` successfully.

    ``result``: the Chime result fields to add to ``ActionData`` (``ReceivedDigits``,
    ``RecordingDestination``, ``RecordingTerminatorUsed``, ``CallRecordingDestination``...).
    ``Type`` and ``Parameters`` in it are ignored: the engine owns those.
    """

    action_id: int
    result: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionFailed:
    """The runtime could not run action ``action_id`` (``InvalidAudioSource``, ``SystemException``...)."""

    action_id: int
    error_type: str
    error_message: str


@dataclass(frozen=True)
class ActionInterrupted:
    """The runtime cut action ``action_id`` short on its own (the engine sends ACTION_INTERRUPTED).

    Not needed after a :class:`~gatewayd.sma.effects.StopAction`: the engine already accounted for it.
    """

    action_id: int


# ------------------------------------------------------------------------------------------ handler
@dataclass(frozen=True)
class HandlerResponded:
    """The handler returned ``response``: parsed JSON (any JSON value: dict, list, str, None...)."""

    invocation_id: int
    response: Any


class InvocationError(StrEnum):
    """Why an invocation produced no response."""

    TIMEOUT = "timeout"
    FUNCTION_ERROR = "function-error"  # the handler raised (Lambda's X-Amz-Function-Error)
    BAD_RESPONSE = "bad-response"  # not JSON
    TRANSPORT = "transport"  # connection refused, HTTP 5xx, throttled, credentials...


@dataclass(frozen=True)
class HandlerFailed:
    """The invocation ``invocation_id`` failed; the engine retries once, then hangs up (480)."""

    invocation_id: int
    error: InvocationError
    message: str = ""


# ------------------------------------------------------------------------------------------ API
@dataclass(frozen=True)
class CallUpdateRequested:
    """UpdateSipMediaApplicationCall: invoke CALL_UPDATE_REQUESTED with these ``Arguments``.

    When its response carries actions, a running interruptible action (PlayAudio, RecordAudio, Pause)
    is stopped (ACTION_INTERRUPTED) and the new actions run at once.
    """

    arguments: Mapping[str, str] = field(default_factory=dict)


Event = (InboundCall | OutboundCall | LegRinging | LegAnswered | LegFailed | LegHungUp | DigitsReceived
         | ActionSucceeded | ActionFailed | ActionInterrupted | HandlerResponded | HandlerFailed
         | CallUpdateRequested)
