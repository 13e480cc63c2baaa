"""SPEC §1 (invocation events) and §2 (handler responses), as transcripts."""

from __future__ import annotations

import json

import pytest

from gatewayd.sma import SessionConfig
from gatewayd.sma import effects as E
from gatewayd.sma import events as V
from tests.unit.sma_transcript import (
    A_ID,
    CALLED,
    CALLER,
    CONFIG,
    START_MS,
    TX,
    Call,
    event,
    hangup,
    leg_a,
    leg_b,
    of,
    only,
    pause,
    play,
    record,
    response,
)


# ------------------------------------------------------------------------------------------ §1
def test_s1_new_inbound_call_exact_payload_without_actiondata_or_status() -> None:
    call = Call()
    inv = call.start()
    assert inv.payload == event(1, "NEW_INBOUND_CALL", leg_a())
    assert "ActionData" not in inv.payload and "Status" not in inv.payload["CallDetails"]["Participants"][0]
    assert inv.deadline == call.now + 20.0 and inv.timeout_s == 20.0 and inv.attempt == 1


def test_s1_sequence_starts_at_1_and_grows_by_1_per_invocation() -> None:
    call = Call()
    inv = call.start()
    seqs = [inv.payload["Sequence"]]
    for _ in range(4):
        out = call.actions(inv, pause(100))
        out = call.succeed(only(out, E.StartAction))
        inv = only(out, E.InvokeHandler)
        seqs.append(inv.payload["Sequence"])
    assert seqs == [1, 2, 3, 4, 5]


def test_s1_sequence_and_transaction_are_per_call() -> None:
    first, second = Call(), Call()
    assert first.start().payload["Sequence"] == 1
    assert second.start().payload["Sequence"] == 1


def test_s1_sip_headers_shown_only_when_the_leg_carried_them() -> None:
    call = Call()
    inv = call.start(headers={"X-Customer": "42", "X-Lang": "en"})
    assert inv.payload["CallDetails"]["Participants"] == [leg_a(SipHeaders={"X-Customer": "42", "X-Lang": "en"})]
    assert "SipHeaders" not in Call().start().payload["CallDetails"]["Participants"][0]


def test_s1_call_details_names_come_from_the_config() -> None:
    cfg = SessionConfig(sip_media_application_id="my-sma", aws_account_id="999", aws_region="eu-west-1",
                        sip_rule_id="my-rule")
    inv = Call(cfg).start()
    d = inv.payload["CallDetails"]
    assert (d["SipMediaApplicationId"], d["AwsAccountId"], d["AwsRegion"], d["SipRuleId"], d["TransactionId"]) == \
        ("my-sma", "999", "eu-west-1", "my-rule", TX)
    assert "TransactionAttributes" not in d


def test_s1_action_successful_echoes_normalised_parameters_and_result_fields() -> None:
    call = Call()
    out = call.actions(call.start(), record(DurationInSeconds="10", SilenceDurationInSeconds="3"))
    start = only(out, E.StartAction)
    out = call.succeed(start, {"RecordingDestination": {"Type": "S3", "BucketName": "recordings", "Key": "vm/k.wav"},
                               "RecordingTerminatorUsed": "#", "Type": "Bogus"}, dt=5)
    assert only(out, E.InvokeHandler).payload == event(2, "ACTION_SUCCESSFUL", leg_a("Connected"), action_data={
        "Type": "RecordAudio",
        "Parameters": {"CallId": A_ID, "DurationInSeconds": 10, "SilenceDurationInSeconds": 3,
                       "SilenceThreshold": 200, "RecordingTerminators": ["#"],
                       "RecordingDestination": {"Type": "S3", "BucketName": "recordings", "Prefix": "vm"}},
        "RecordingDestination": {"Type": "S3", "BucketName": "recordings", "Key": "vm/k.wav"},
        "RecordingTerminatorUsed": "#"})


def test_s1_action_failed_puts_error_inside_actiondata() -> None:
    call = Call()
    out = call.actions(call.start(), play("missing.wav"))
    out = call.fail(only(out, E.StartAction), "InvalidAudioSource", "Audio Source parameter value is invalid.")
    assert only(out, E.InvokeHandler).payload == event(2, "ACTION_FAILED", leg_a("Connected"), action_data={
        "Type": "PlayAudio",
        "Parameters": {"CallId": A_ID, "AudioSource": {"Type": "S3", "BucketName": "prompts", "Key": "missing.wav"},
                       "Repeat": 1},
        "ErrorType": "InvalidAudioSource", "ErrorMessage": "Audio Source parameter value is invalid."})


def test_s1_hangup_event_shape_with_numeric_sip_code() -> None:
    call = Call()
    call.actions(call.start(), pause(1000))
    out = call.hang_up(code=486, dt=1)
    assert only(out, E.InvokeHandler).payload == event(2, "HANGUP", leg_a("Disconnected"), action_data={
        "Type": "Hangup", "Parameters": {"SipResponseCode": 486, "CallId": A_ID, "ParticipantTag": "LEG-A"}})


def test_s1_outbound_call_new_outbound_ringing_call_answered() -> None:
    call = Call()
    out = call.feed(V.OutboundCall(A_ID, CALLED, CALLER, START_MS, {"X-Job": "7"}, timeout_s=25))
    dial = only(out, E.DialLeg)
    assert (dial.call_id, dial.endpoint.uri, dial.caller_id, dial.timeout_s, dict(dial.sip_headers)) == \
        (A_ID, CALLER, CALLED, 25, {"X-Job": "7"})
    outbound = {"CallId": A_ID, "ParticipantTag": "LEG-A", "To": CALLER, "From": CALLED, "Direction": "Outbound",
                "StartTimeInMilliseconds": str(START_MS), "SipHeaders": {"X-Job": "7"}}
    inv = only(out, E.InvokeHandler)
    assert inv.payload == event(1, "NEW_OUTBOUND_CALL", outbound, rule=False)
    assert call.actions(inv, pause(100)) == []  # NEW_OUTBOUND_CALL's response is ignored
    inv = only(call.feed(V.LegRinging(A_ID), dt=1), E.InvokeHandler)
    assert inv.payload == event(2, "RINGING", outbound, rule=False)
    assert call.reply(inv, ()) == []
    assert call.feed(V.LegRinging(A_ID)) == []  # RINGING once
    inv = only(call.feed(V.LegAnswered(A_ID), dt=3), E.InvokeHandler)
    assert inv.payload == event(3, "CALL_ANSWERED", {**outbound, "Status": "Connected"}, rule=False)
    out = call.actions(inv, pause(100))
    assert only(out, E.StartAction).action.call_id == A_ID  # CALL_ANSWERED's response is used


def test_s1_outbound_call_that_fails_gets_hangup_with_the_code_then_ends() -> None:
    call = Call()
    out = call.feed(V.OutboundCall(A_ID, CALLED, CALLER, START_MS))
    call.reply(only(out, E.InvokeHandler), response())
    out = call.feed(V.LegFailed(A_ID, 486, "busy"), dt=2)
    inv = only(out, E.InvokeHandler)
    assert inv.payload["InvocationEventType"] == "HANGUP"
    assert inv.payload["ActionData"]["Parameters"]["SipResponseCode"] == 486
    assert call.reply(inv, response(pause(1))) == [E.EndTransaction("completed")]


def test_s1_outbound_call_not_answered_in_time_is_cancelled_with_480() -> None:
    call = Call()
    out = call.feed(V.OutboundCall(A_ID, CALLED, CALLER, START_MS, timeout_s=30))
    call.reply(only(out, E.InvokeHandler), response())
    assert call.timer(29.9) == []
    out = call.timer(0.1)
    assert out[0] == E.HangupLeg(A_ID, 0)
    assert only(out, E.InvokeHandler).payload["ActionData"]["Parameters"]["SipResponseCode"] == 480


# ------------------------------------------------------------------------------------------ §2 invalid responses
INVALID = [
    ("too-many-actions", response(*[pause(10)] * 11), "InvalidActionList",
     "Too many actions: 11. Maximum number of actions is 10."),
    ("wrong-schema-version", {"SchemaVersion": "2.0", "Actions": []}, "SchemaVersionMismatch",
     'SchemaVersion must be "1.0"; got "2.0".'),
    ("missing-schema-version", {"Actions": [pause(10)]}, "SchemaVersionMismatch",
     'SchemaVersion must be "1.0"; got missing.'),
    ("non-object-string", "hello", "SchemaVersionMismatch",
     'The response must be a JSON object with SchemaVersion "1.0"; got a string.'),
    ("non-object-null", None, "SchemaVersionMismatch",
     'The response must be a JSON object with SchemaVersion "1.0"; got null.'),
    ("non-empty-array", [pause(10)], "SchemaVersionMismatch",
     'The response must be a JSON object with SchemaVersion "1.0"; got an array.'),
    ("http-wrapper", {"statusCode": 200, "body": json.dumps(response(pause(10)))}, "SchemaVersionMismatch",
     "SchemaVersion is missing: the response is an HTTP {statusCode, body} wrapper; return the object itself."),
    ("actions-not-array", {"SchemaVersion": "1.0", "Actions": {"Type": "Pause"}}, "InvalidActionList",
     "Actions must be an array; got an object."),
    ("action-not-object", response(pause(10), "Hangup"), "InvalidActionList",
     "Action 2 must be an object; got a string."),
    ("action-without-type", response({"Parameters": {}}), "InvalidActionList", "Action 1 has no Type."),
    ("unknown-action-type", response(pause(10), {"Type": "Dance", "Parameters": {}}), "InvalidActionType",
     "Action 2 has an unknown Type: 'Dance'."),
    ("parameters-not-object", response({"Type": "Pause", "Parameters": [500]}), "InvalidActionList",
     "Action 1 (Pause): Parameters must be an object; got an array."),
    ("attributes-not-object", {"SchemaVersion": "1.0", "TransactionAttributes": ["a"]},
     "TransactionAttributesInvalidType", "TransactionAttributes must be an object; got an array."),
    ("attributes-101-keys", response(attributes={f"k{i}": i for i in range(101)}),
     "TransactionAttributesInvalidMapSize",
     "Transaction Attributes has too many mappings. Maximum number of mappings is 100"),
    ("attributes-over-20kb", response(attributes={"blob": "x" * 20470}), "TransactionAttributesInvalidMapSize",
     "Transaction Attributes is too large: 20481 bytes. Maximum size is 20480 bytes"),
]


@pytest.mark.parametrize(("name", "resp", "error_type", "message"), INVALID, ids=[i[0] for i in INVALID])
def test_s2_invalid_response_gives_invalid_lambda_response_with_top_level_error(
        name: str, resp: object, error_type: str, message: str) -> None:
    call = Call()
    out = call.reply(call.start(), resp)
    assert only(out, E.InvokeHandler).payload == event(2, "INVALID_LAMBDA_RESPONSE", leg_a(),
                                                       error=(error_type, message))
    assert of(out, E.StartAction) == [] and of(out, E.AnswerLeg) == []


def test_s2_after_invalid_response_the_call_goes_on_and_the_next_response_decides() -> None:
    call = Call()
    inv = only(call.reply(call.start(), {"SchemaVersion": "1.0", "Actions": "nope"}), E.InvokeHandler)
    out = call.actions(inv, play())
    assert [type(e) for e in out] == [E.AnswerLeg, E.StartAction]


def test_s2_invalid_response_mid_list_keeps_the_pending_actions_for_the_next_response() -> None:
    call = Call()
    out = call.actions(call.start(), record(), play("after.wav"))
    out = call.succeed(only(out, E.StartAction), {"RecordingDestination": {}}, dt=3)
    inv = only(call.reply(only(out, E.InvokeHandler), {"SchemaVersion": "1"}), E.InvokeHandler)
    assert inv.payload["InvocationEventType"] == "INVALID_LAMBDA_RESPONSE"
    out = call.reply(inv, response())  # empty: the rest of the list runs
    assert only(out, E.StartAction).action.parameters["AudioSource"]["Key"] == "after.wav"


def test_s2_ten_actions_are_accepted() -> None:
    call = Call()
    out = call.actions(call.start(), *[pause(10)] * 10)
    assert len(of(out, E.StartAction)) == 1 and of(out, E.InvokeHandler) == []


@pytest.mark.parametrize("resp", [{"SchemaVersion": "1.0"}, {"SchemaVersion": "1.0", "Actions": None}],
                         ids=["absent", "null"])
def test_s2_actions_absent_or_null_lets_pending_actions_continue(resp: dict[str, object]) -> None:
    call = Call()
    out = call.actions(call.start(), record(), play("next.wav"))
    out = call.succeed(only(out, E.StartAction), {}, dt=2)
    out = call.reply(only(out, E.InvokeHandler), resp)
    assert only(out, E.StartAction).action.parameters["AudioSource"]["Key"] == "next.wav"


def test_s2_empty_array_response_means_no_actions() -> None:
    call = Call()
    assert call.reply(call.start(), []) == []  # Python handlers' `return ()`; the line keeps ringing
    assert not call.session.ended


def test_s2_transaction_attributes_merge_clear_and_absent() -> None:
    call = Call()
    out = call.actions(call.start(), pause(100), attributes={"a": 1, "nested": {"x": [1, 2]}})
    inv = only(call.succeed(only(out, E.StartAction)), E.InvokeHandler)
    assert inv.payload["CallDetails"]["TransactionAttributes"] == {"a": 1, "nested": {"x": [1, 2]}}
    out = call.actions(inv, pause(100), attributes={"b": "two", "a": None})  # merged; null is a value
    inv = only(call.succeed(only(out, E.StartAction)), E.InvokeHandler)
    assert inv.payload["CallDetails"]["TransactionAttributes"] == {"a": None, "nested": {"x": [1, 2]}, "b": "two"}
    out = call.actions(inv, pause(100))  # absent: unchanged
    inv = only(call.succeed(only(out, E.StartAction)), E.InvokeHandler)
    assert inv.payload["CallDetails"]["TransactionAttributes"]["b"] == "two"
    out = call.actions(inv, pause(100), attributes={})  # {} clears
    inv = only(call.succeed(only(out, E.StartAction)), E.InvokeHandler)
    assert "TransactionAttributes" not in inv.payload["CallDetails"]


def test_s2_transaction_attributes_limits_count_the_merged_map() -> None:
    call = Call()
    out = call.actions(call.start(), pause(100), attributes={f"k{i}": i for i in range(100)})
    inv = only(call.succeed(only(out, E.StartAction)), E.InvokeHandler)
    assert len(inv.payload["CallDetails"]["TransactionAttributes"]) == 100
    inv = only(call.reply(inv, response(attributes={"one-more": 1})), E.InvokeHandler)
    assert inv.payload["ErrorType"] == "TransactionAttributesInvalidMapSize"
    assert len(inv.payload["CallDetails"]["TransactionAttributes"]) == 100  # the bad update was not applied


def test_s2_transaction_attributes_of_a_handler_do_not_alias_its_objects() -> None:
    call = Call()
    attrs = {"list": [1]}
    out = call.actions(call.start(), pause(100), attributes=attrs)
    attrs["list"].append(2)
    inv = only(call.succeed(only(out, E.StartAction)), E.InvokeHandler)
    assert inv.payload["CallDetails"]["TransactionAttributes"] == {"list": [1]}


def test_s2_lax_numbers_and_booleans_are_echoed_in_normalised_types() -> None:
    call = Call()
    out = call.actions(call.start(), pause(" 3000 "), {"Type": "VoiceFocus", "Parameters": {"Enable": "True"}},
                       hangup(SipResponseCode="486"))
    start = only(out, E.StartAction)
    assert start.action.parameters == {"CallId": A_ID, "DurationInMilliseconds": 3000}
    out = call.succeed(start)
    vf = only(out, E.StartAction)
    assert vf.action.parameters == {"CallId": A_ID, "Enable": True}
    out = call.succeed(vf)
    assert only(out, E.HangupLeg) == E.HangupLeg(A_ID, 486)
    assert only(out, E.InvokeHandler).payload["ActionData"]["Parameters"]["SipResponseCode"] == 486


def test_s2_config_default_application_ids() -> None:
    assert CONFIG.handler_timeout_s == 20.0 and CONFIG.ring_timeout_s == 30.0 and CONFIG.max_invocations == 1000


def test_s1_leg_b_listed_second_with_its_own_start_time() -> None:
    call = Call()
    inv, dial = call.bridged()
    assert inv.payload["CallDetails"]["Participants"] == [leg_a("Connected"),
                                                         leg_b("Connected", start_ms=START_MS)]
    assert dial.call_id == "call-b-1"
