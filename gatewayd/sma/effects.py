"""What a :class:`~gatewayd.sma.session.Session` asks the runtime to do: the engine's outputs.

Effects come out of ``Session.next_effect()`` (or ``drain()``) in the order the runtime must carry them
out. Each is a small frozen dataclass; the runtime executes it and reports the outcome later as an
event (see :mod:`gatewayd.sma.events`). Effects are requests, not questions: the engine has already
updated its own state (an AnswerLeg'd leg counts as connected, a HangupLeg'd one as gone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gatewayd.sma.actions import Action, AudioSource, BridgeEndpoint


@dataclass(frozen=True)
class InvokeHandler:
    """Invoke the handler with ``payload`` (the exact Chime event, a plain JSON-able dict).

    Report the outcome as HandlerResponded / HandlerFailed with the same ``invocation_id``; past
    ``deadline`` (on the session's clock) the engine counts it as timed out by itself (``handle_timer``)
    and ignores a late answer; ``timeout_s`` is ``deadline - now`` at emission, for the invoker.
    ``attempt`` is 1, or 2 for the one retry (same payload, same Sequence).
    """

    invocation_id: int
    payload: Mapping[str, Any] = field(hash=False)
    deadline: float
    timeout_s: float
    attempt: int = 1


@dataclass(frozen=True)
class AnswerLeg:
    """Answer the offered inbound leg (200 OK / off-hook) and attach its media."""

    call_id: str


@dataclass(frozen=True)
class StartAction:
    """Run ``action`` (a :data:`~gatewayd.sma.actions.RuntimeAction`) on ``action.call_id``.

    Report ActionSucceeded / ActionFailed with ``action_id`` when it ends (for ReceiveDigits:
    DigitsReceived for every match, and nothing else until it is stopped).
    """

    action_id: int
    action: Action


class StopReason(StrEnum):
    #: CALL_UPDATE_REQUESTED replaced it: stop at once, report nothing (the engine sent ACTION_INTERRUPTED).
    INTERRUPT = "interrupt"
    #: Not wanted any more (leg gone, ReceiveDigits replaced, call over): stop, report nothing.
    CANCEL = "cancel"
    #: The leg hung up during a RecordAudio: finish the recording where the caller's audio ended,
    #: upload it and report ActionSucceeded (no RecordingTerminatorUsed) or ActionFailed as usual.
    HANGUP = "hangup"


@dataclass(frozen=True)
class StopAction:
    """Stop the running action ``action_id`` on ``call_id`` (see :class:`StopReason` for what to report)."""

    action_id: int
    call_id: str
    reason: StopReason


@dataclass(frozen=True)
class DialLeg:
    """Place an outbound leg ``call_id`` to ``endpoint`` showing ``caller_id``.

    Report LegRinging / LegAnswered / LegFailed. The engine also times it out itself after
    ``timeout_s`` (it then emits HangupLeg for it). ``ringback``: for a CallAndBridge, play this file
    in a loop to ``ringback_to`` (LEG-A) until the leg answers or fails. ``sip_headers``: ``X-`` headers
    to send with the INVITE.
    """

    call_id: str
    endpoint: BridgeEndpoint
    caller_id: str
    timeout_s: float
    sip_headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    ringback: AudioSource | None = None
    ringback_to: str | None = None


@dataclass(frozen=True)
class BridgeLegs:
    """Connect the audio of legs ``a`` (LEG-A) and ``b`` (LEG-B) both ways; stops any ringback on ``a``."""

    a: str
    b: str


@dataclass(frozen=True)
class UnbridgeLegs:
    """Stop connecting the audio of ``a`` and ``b`` (one of them went away)."""

    a: str
    b: str


@dataclass(frozen=True)
class HangupLeg:
    """End leg ``call_id``: BYE / on-hook, or reject / cancel with ``sip_code`` if not answered."""

    call_id: str
    sip_code: int = 0


@dataclass(frozen=True)
class EndTransaction:
    """The transaction is over: no leg is left, no invocation or action result is awaited.

    The session accepts no more events; the runtime can forget it. ``reason``: "completed",
    "handler-failed" (twice), "invocation-limit".
    """

    reason: str


Effect = (InvokeHandler | AnswerLeg | StartAction | StopAction | DialLeg | BridgeLegs | UnbridgeLegs
          | HangupLeg | EndTransaction)
