"""Property tests: any JSON as a handler response, any order of runtime events.

The engine never raises; every response to an invocation whose answer counts yields either actions
(an effect that runs one, or the ACTION_* / HANGUP event a synchronous action produces) or a defined
INVALID_LAMBDA_RESPONSE; every payload is plain JSON with a growing Sequence.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayd.sma import effects as E
from gatewayd.sma import events as V
from gatewayd.sma.actions import ACTION_TYPES, CLOUD_ONLY_TYPES
from gatewayd.sma.response import ERROR_TYPES, InvalidResponse, ValidResponse, validate_response
from tests.unit.sma_transcript import A_ID, Call, of

EXAMPLES = 2000
EVENT_TYPES = {"NEW_INBOUND_CALL", "NEW_OUTBOUND_CALL", "RINGING", "CALL_ANSWERED", "ACTION_SUCCESSFUL",
               "ACTION_FAILED", "ACTION_INTERRUPTED", "HANGUP", "INVALID_LAMBDA_RESPONSE", "DIGITS_RECEIVED",
               "CALL_UPDATE_REQUESTED"}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=12))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                          max_size=4), max_leaves=12)

PARAM_NAMES = ["CallId", "ParticipantTag", "DurationInSeconds", "SilenceDurationInSeconds", "SilenceThreshold",
               "RecordingTerminators", "RecordingDestination", "AudioSource", "Repeat", "PlaybackTerminators",
               "DurationInMilliseconds", "Enable", "SipResponseCode", "Digits", "ToneDurationInMilliseconds",
               "InputDigitsRegex", "InBetweenDigitsDurationInMilliseconds", "FlushDigitsDurationInMilliseconds",
               "Text", "SpeechParameters", "FailureSpeechParameters", "MinNumberOfDigits", "MaxNumberOfDigits",
               "TerminatorDigits", "RepeatDurationInMilliseconds", "FailureAudioSource", "CallerIdNumber",
               "Endpoints", "CallTimeoutSeconds", "RingbackTone", "SipHeaders", "Track", "Destination", "Engine"]
plausible = st.sampled_from([
    "10", "3000", "True", "false", "#", ["#"], ["#", "*"], "LEG-A", "LEG-B", "", A_ID, 0, 1, 200, 1000, 1001, -1,
    r"^\d{2}#$", "(", "BOTH", "+15550123", {"Type": "S3", "BucketName": "b", "Key": "k.wav"},
    {"Type": "S3", "BucketName": "b", "Prefix": "vm/"}, {"Type": "S3", "BucketName": "b", "Prefix": "../x"},
    [{"BridgeEndpointType": "PSTN", "Uri": "+1555"}], {"Text": "hello"}, {"Type": "S3", "Location": "b/p"},
    {"X-Ticket": "1"}, "neural"])
params = st.dictionaries(st.sampled_from(PARAM_NAMES), st.one_of(plausible, json_values), max_size=8)
action_types = st.sampled_from(sorted(ACTION_TYPES) + sorted(CLOUD_ONLY_TYPES) + ["Bogus", ""])
actions = st.one_of(
    st.fixed_dictionaries({"Type": action_types}, optional={"Parameters": st.one_of(st.none(), params, json_values)}),
    json_values)
near_valid = st.fixed_dictionaries(
    {"SchemaVersion": st.sampled_from(["1.0", "1.0", "1.0", "1", 1.0])},
    optional={"Actions": st.one_of(st.none(), st.lists(actions, max_size=12)),
              "TransactionAttributes": st.one_of(st.none(), st.dictionaries(st.text(max_size=6), json_values,
                                                                            max_size=6), json_values)})
responses = st.one_of(json_values, near_valid, near_valid)

ACTING = (E.StartAction, E.AnswerLeg, E.DialLeg, E.HangupLeg)


class Checker:
    """Checks every invocation of one call and drives the runtime side."""

    def __init__(self) -> None:
        self.call = Call()
        self.seq = 0
        self.running: dict[int, E.StartAction] = {}
        self.dialing: list[str] = []
        self.inv: E.InvokeHandler | None = None

    def take(self, out: list[E.Effect]) -> list[E.InvokeHandler]:
        invs = of(out, E.InvokeHandler)
        assert len(invs) <= 1, out
        for inv in invs:
            p = inv.payload
            json.dumps(p, allow_nan=False)
            assert p["SchemaVersion"] == "1.0" and p["InvocationEventType"] in EVENT_TYPES
            assert p["Sequence"] == (self.seq if inv.attempt == 2 else self.seq + 1)
            self.seq = p["Sequence"]
            tags = [x["ParticipantTag"] for x in p["CallDetails"]["Participants"]]
            assert tags == sorted(tags) and tags[0] == "LEG-A"
            if p["InvocationEventType"] == "ACTION_FAILED":
                data = p["ActionData"]
                assert isinstance(data["ErrorType"], str) and isinstance(data["ErrorMessage"], str)
            if p["InvocationEventType"] == "INVALID_LAMBDA_RESPONSE":
                assert p["ErrorType"] in ERROR_TYPES and p["ErrorMessage"] and "ActionData" not in p
            self.inv = inv
        for e in out:
            if isinstance(e, E.StartAction) and e.action.TYPE != "ReceiveDigits":
                self.running[e.action_id] = e
            elif isinstance(e, E.StopAction) and e.reason is not E.StopReason.HANGUP:
                self.running.pop(e.action_id, None)
            elif isinstance(e, E.DialLeg):
                self.dialing.append(e.call_id)
            elif isinstance(e, E.EndTransaction):
                assert e is out[-1]
        return invs

    def respond(self, resp: Any) -> None:
        assert self.inv is not None
        inv, self.inv = self.inv, None
        live = any(p.get("Status", "Connected") == "Connected" for p in inv.payload["CallDetails"]["Participants"])
        counts = live and inv.payload["InvocationEventType"] not in ("ACTION_INTERRUPTED", "HANGUP")
        expected = validate_response(resp, self.call.session.transaction_attributes)
        out = self.call.reply(inv, resp)
        invs = self.take(out)
        if not counts:
            return
        if isinstance(expected, InvalidResponse):
            assert invs and invs[0].payload["InvocationEventType"] == "INVALID_LAMBDA_RESPONSE"
            assert (invs[0].payload["ErrorType"], invs[0].payload["ErrorMessage"]) == (
                expected.error_type, expected.error_message)
            assert not any(isinstance(e, ACTING) for e in out)
        else:
            assert isinstance(expected, ValidResponse)
            assert not any(i.payload["InvocationEventType"] == "INVALID_LAMBDA_RESPONSE" for i in invs)
            if expected.actions and not self.running_before:
                assert any(isinstance(e, ACTING) for e in out) or invs, (resp, out)

    def drive(self) -> None:
        """Let the runtime finish what runs until the handler is invoked again (or the call ends)."""
        for _ in range(30):
            if self.inv is not None or self.call.session.ended:
                return
            if self.dialing:
                self.take(self.call.feed(V.LegAnswered(self.dialing.pop(0)), dt=1))
            elif self.running:
                action_id = min(self.running)
                self.running.pop(action_id)
                self.take(self.call.feed(V.ActionSucceeded(action_id, {"ReceivedDigits": "1"}), dt=1))
            else:
                self.take(self.call.hang_up(dt=1))
                if not self.inv and not self.call.session.ended:
                    self.take(self.call.hang_up("call-b-1", dt=1))

    @property
    def running_before(self) -> bool:
        return bool(self.running)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(responses, min_size=1, max_size=6))
def test_any_json_response_yields_actions_or_a_defined_invalid_lambda_response(resps: list[Any]) -> None:
    checker = Checker()
    checker.take([checker.call.start()])
    for resp in resps:
        if checker.inv is None:
            break
        checker.respond(resp)
        checker.drive()
    assert checker.seq <= 1000


EVENTS = st.one_of(
    st.builds(V.LegHungUp, st.sampled_from([A_ID, "call-b-1", "nope"]), st.sampled_from([0, 480, 486])),
    st.builds(V.LegAnswered, st.sampled_from([A_ID, "call-b-1"])),
    st.builds(V.LegFailed, st.sampled_from([A_ID, "call-b-1"]), st.sampled_from([480, 486])),
    st.builds(V.LegRinging, st.sampled_from([A_ID, "call-b-1"])),
    st.builds(V.ActionSucceeded, st.integers(0, 8), st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
    st.builds(V.ActionFailed, st.integers(0, 8), st.text(max_size=5), st.text(max_size=5)),
    st.builds(V.ActionInterrupted, st.integers(0, 8)),
    st.builds(V.DigitsReceived, st.integers(0, 8), st.text("0123456789#*", max_size=4)),
    st.builds(V.HandlerResponded, st.integers(0, 12), responses),
    st.builds(V.HandlerFailed, st.integers(0, 12), st.sampled_from(list(V.InvocationError))),
    st.builds(V.CallUpdateRequested, st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)),
    st.floats(0, 40).map(lambda dt: ("timer", dt)),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EVENTS, max_size=25))
def test_any_event_order_never_raises_and_keeps_the_payload_invariants(events: list[Any]) -> None:
    checker = Checker()
    checker.take([checker.call.start()])
    ended_at: int | None = None
    for ev in events:
        if isinstance(ev, tuple):
            out = checker.call.timer(ev[1])
        elif isinstance(ev, V.HandlerResponded) and checker.inv is not None and ev.invocation_id % 2:
            out = checker.call.reply(checker.inv, ev.response)  # mostly answer the live invocation
        else:
            out = checker.call.feed(ev, dt=0.5)
        checker.take(out)
        if ended_at is not None:
            assert out == []
        if checker.call.session.ended and ended_at is None:
            ended_at = len(checker.call.log)
        timer = checker.call.session.get_timer()
        if isinstance(ev, tuple):  # handle_timer(now) leaves nothing overdue
            assert timer is None or timer > checker.call.now
