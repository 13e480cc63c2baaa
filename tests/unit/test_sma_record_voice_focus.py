"""SPEC §4 (RecordAudio) and §5 (VoiceFocus) decisions, as transcripts."""

from __future__ import annotations

from typing import Any

import pytest

from gatewayd.sma import SessionConfig
from gatewayd.sma import actions as A
from gatewayd.sma import effects as E
from gatewayd.sma import events as V
from tests.unit.sma_transcript import (
    A_ID,
    CONFIG,
    Call,
    event,
    leg_a,
    of,
    only,
    play,
    record,
    response,
)

DEST = {"Type": "S3", "BucketName": "recordings", "Prefix": "vm"}


def run_record(call: Call, **params: Any) -> E.StartAction | dict[str, Any]:
    """Start RecordAudio; the StartAction, or the ACTION_FAILED ActionData."""
    out = call.actions(call.start(), record(**params))
    starts = of(out, E.StartAction)
    if starts:
        return starts[0]
    inv = only(out, E.InvokeHandler)
    assert inv.payload["InvocationEventType"] == "ACTION_FAILED"
    data: dict[str, Any] = inv.payload["ActionData"]
    return data


# ------------------------------------------------------------------------------------------ §4 parameters
def test_s4_seed_example_is_accepted_and_normalised() -> None:
    call = Call()
    start = run_record(call, CallId=A_ID, DurationInSeconds="10", SilenceDurationInSeconds=3, SilenceThreshold=100,
                       RecordingDestination={"Type": "S3", "BucketName": "valid-bucket-name",
                                             "Prefix": "valid-prefix-name"})
    assert isinstance(start, E.StartAction)
    assert start.action == A.RecordAudio(
        call_id=A_ID, parameters={"CallId": A_ID, "DurationInSeconds": 10, "SilenceDurationInSeconds": 3,
                                  "SilenceThreshold": 100, "RecordingTerminators": ["#"],
                                  "RecordingDestination": {"Type": "S3", "BucketName": "valid-bucket-name",
                                                           "Prefix": "valid-prefix-name"}},
        bucket="valid-bucket-name", prefix="valid-prefix-name", max_duration_ms=10000, silence_duration_ms=3000,
        silence_threshold=100, terminators=("#",))


def test_s4_duration_absent_uses_the_configured_cap_and_is_not_echoed() -> None:
    start = run_record(Call())
    assert isinstance(start, E.StartAction) and isinstance(start.action, A.RecordAudio)
    assert start.action.max_duration_ms == 3600 * 1000 and "DurationInSeconds" not in start.action.parameters
    capped = run_record(Call(SessionConfig(**{**CONFIG.__dict__, "max_record_duration_s": 60})))
    assert isinstance(capped, E.StartAction) and isinstance(capped.action, A.RecordAudio)
    assert capped.action.max_duration_ms == 60000


def test_s4_fractional_duration_is_kept() -> None:
    start = run_record(Call(), DurationInSeconds="2.5")
    assert isinstance(start, E.StartAction) and isinstance(start.action, A.RecordAudio)
    assert start.action.max_duration_ms == 2500 and start.action.parameters["DurationInSeconds"] == 2.5


def test_s4_silence_duration_absent_means_detection_off_and_threshold_defaults_to_200() -> None:
    start = run_record(Call())
    assert isinstance(start, E.StartAction) and isinstance(start.action, A.RecordAudio)
    assert start.action.silence_duration_ms is None and start.action.silence_threshold == 200
    assert start.action.parameters["SilenceThreshold"] == 200
    assert "SilenceDurationInSeconds" not in start.action.parameters


@pytest.mark.parametrize(("value", "ms"), [(1, 1000), ("1000", 1000000), (2.5, 2500)])
def test_s4_silence_duration_range(value: Any, ms: int) -> None:
    start = run_record(Call(), SilenceDurationInSeconds=value)
    assert isinstance(start, E.StartAction) and isinstance(start.action, A.RecordAudio)
    assert start.action.silence_duration_ms == ms


@pytest.mark.parametrize("terminators", [["#"], ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"], [],
                                         "#*"], ids=str)
def test_s4_recording_terminators_accepted(terminators: Any) -> None:
    start = run_record(Call(), RecordingTerminators=terminators)
    assert isinstance(start, E.StartAction) and isinstance(start.action, A.RecordAudio)
    assert list(start.action.terminators) == list(terminators)


BAD_TARGET = ("InvalidActionParameter", "CallId or ParticipantTag parameter for action is invalid.")
BAD_DURATION = ("InvalidActionParameter", "DurationInSeconds parameter value is invalid.")
BAD_SILENCE = ("InvalidActionParameter", "SilenceDurationInSeconds parameter value is invalid.")
BAD_THRESHOLD = ("InvalidActionParameter", "SilenceThreshold parameter value is invalid.")
BAD_DEST = ("InvalidActionParameter", "RecordingDestination parameter value is invalid.")
BAD_TERMS = ("InvalidActionParameter", "RecordingTerminators parameter value is invalid.")

RECORD_ERRORS: list[tuple[str, dict[str, Any], tuple[str, str]]] = [
    ("unknown-call-id", {"CallId": "call-x"}, BAD_TARGET),
    ("unknown-tag", {"ParticipantTag": "LEG-B"}, BAD_TARGET),
    ("duration-zero", {"DurationInSeconds": 0}, BAD_DURATION),
    ("duration-negative", {"DurationInSeconds": "-3"}, BAD_DURATION),
    ("duration-text", {"DurationInSeconds": "ten"}, BAD_DURATION),
    ("duration-bool", {"DurationInSeconds": True}, BAD_DURATION),
    ("duration-nan", {"DurationInSeconds": "nan"}, BAD_DURATION),
    ("silence-zero", {"SilenceDurationInSeconds": 0}, BAD_SILENCE),
    ("silence-1001", {"SilenceDurationInSeconds": 1001}, BAD_SILENCE),
    ("silence-list", {"SilenceDurationInSeconds": [3]}, BAD_SILENCE),
    ("threshold-zero", {"SilenceThreshold": 0}, BAD_THRESHOLD),
    ("threshold-1001", {"SilenceThreshold": "1001"}, BAD_THRESHOLD),
    ("threshold-fraction", {"SilenceThreshold": 2.5}, BAD_THRESHOLD),
    ("dest-not-s3", {"RecordingDestination": {**DEST, "Type": "GCS"}}, BAD_DEST),
    ("dest-no-bucket", {"RecordingDestination": {"Type": "S3"}}, BAD_DEST),
    ("dest-empty-bucket", {"RecordingDestination": {"Type": "S3", "BucketName": ""}}, BAD_DEST),
    ("dest-not-object", {"RecordingDestination": "s3://recordings/vm"}, BAD_DEST),
    ("prefix-leading-slash", {"RecordingDestination": {**DEST, "Prefix": "/vm"}}, BAD_DEST),
    ("prefix-dotdot", {"RecordingDestination": {**DEST, "Prefix": "vm/../etc"}}, BAD_DEST),
    ("prefix-dotdot-alone", {"RecordingDestination": {**DEST, "Prefix": ".."}}, BAD_DEST),
    ("prefix-control-char", {"RecordingDestination": {**DEST, "Prefix": "vm\n"}}, BAD_DEST),
    ("prefix-unsafe-char", {"RecordingDestination": {**DEST, "Prefix": "vm#1"}}, BAD_DEST),
    ("prefix-980-chars", {"RecordingDestination": {**DEST, "Prefix": "p" * 980}}, BAD_DEST),
    ("prefix-not-string", {"RecordingDestination": {**DEST, "Prefix": 7}}, BAD_DEST),
    ("dest-missing", {"RecordingDestination": None},
     ("MissingRequiredActionParameter", "RecordingDestination is a required parameter.")),
    ("terminators-missing", {"RecordingTerminators": None},
     ("MissingRequiredActionParameter", "RecordingTerminators is a required parameter.")),
    ("terminators-two-chars", {"RecordingTerminators": ["##"]}, BAD_TERMS),
    ("terminators-letter", {"RecordingTerminators": ["A"]}, BAD_TERMS),
    ("terminators-number", {"RecordingTerminators": [1]}, BAD_TERMS),
]


@pytest.mark.parametrize(("name", "params", "error"), RECORD_ERRORS, ids=[r[0] for r in RECORD_ERRORS])
def test_s4_invalid_parameters_fail_with_the_seed_messages(name: str, params: dict[str, Any],
                                                           error: tuple[str, str]) -> None:
    call = Call()
    data = run_record(call, **params)
    assert isinstance(data, dict), f"{name} was accepted"
    assert (data["ErrorType"], data["ErrorMessage"]) == error
    assert data["Type"] == "RecordAudio"
    assert of(call.log, E.AnswerLeg) == []


def test_s4_failed_validation_echoes_what_was_given_with_the_resolved_call_id() -> None:
    call = Call()
    out = call.actions(call.start(), record(DurationInSeconds="-1"))
    assert only(out, E.InvokeHandler).payload == event(2, "ACTION_FAILED", leg_a(), action_data={
        "Type": "RecordAudio",
        "Parameters": {"CallId": A_ID, "DurationInSeconds": "-1", "RecordingTerminators": ["#"],
                       "RecordingDestination": DEST},
        "ErrorType": "InvalidActionParameter", "ErrorMessage": "DurationInSeconds parameter value is invalid."})


@pytest.mark.parametrize("prefix", ["p" * 979, "a/b/c-(1)!*'_.", "dir/", "x..y/z"])
def test_s4_valid_prefixes(prefix: str) -> None:
    start = run_record(Call(), RecordingDestination={**DEST, "Prefix": prefix})
    assert isinstance(start, E.StartAction)


def test_s4_bucket_must_be_configured_when_the_config_lists_buckets() -> None:
    cfg = SessionConfig(**{**CONFIG.__dict__, "buckets": frozenset({"recordings"})})
    assert isinstance(run_record(Call(cfg)), E.StartAction)
    data = run_record(Call(cfg), RecordingDestination={"Type": "S3", "BucketName": "elsewhere"})
    assert isinstance(data, dict) and data["ErrorMessage"] == "RecordingDestination parameter value is invalid."


@pytest.mark.parametrize(("prefix", "key"), [(None, "u.wav"), ("vm", "vm/u.wav"), ("vm/", "vm/u.wav"),
                                             ("a/b", "a/b/u.wav"), ("", "u.wav")])
def test_s4_object_key_joins_prefix_without_doubling_the_slash(prefix: str | None, key: str) -> None:
    dest: dict[str, Any] = {"Type": "S3", "BucketName": "recordings"}
    if prefix is not None:
        dest["Prefix"] = prefix
    start = run_record(Call(), RecordingDestination=dest)
    assert isinstance(start, E.StartAction) and isinstance(start.action, A.RecordAudio)
    assert start.action.object_key("u.wav") == key


# ------------------------------------------------------------------------------------------ §4 outcomes
def test_s4_success_is_reported_with_the_destination_and_terminator() -> None:
    call = Call()
    start = run_record(call)
    assert isinstance(start, E.StartAction)
    dest = {"Type": "S3", "BucketName": "recordings", "Key": "vm/6f1c.wav"}
    out = call.succeed(start, {"RecordingDestination": dest, "RecordingTerminatorUsed": "#"}, dt=12)
    data = only(out, E.InvokeHandler).payload["ActionData"]
    assert data["RecordingDestination"] == dest and data["RecordingTerminatorUsed"] == "#"


def test_s4_upload_failure_is_action_failed_with_the_seed_message() -> None:
    call = Call()
    start = run_record(call)
    assert isinstance(start, E.StartAction)
    out = call.fail(start, "InvalidActionParameter", A.MSG_UPLOAD_FAILED, dt=20)
    data = only(out, E.InvokeHandler).payload["ActionData"]
    assert (data["ErrorType"], data["ErrorMessage"]) == ("InvalidActionParameter",
                                                         "Error occurred while uploading recording to S3 bucket.")


def test_s4_caller_hanging_up_mid_recording_gets_action_successful_then_hangup() -> None:
    call = Call()
    out = call.actions(call.start(), record(), play("never.wav"))
    start = only(out, E.StartAction)
    out = call.hang_up(dt=8)
    assert out == [E.StopAction(start.action_id, A_ID, E.StopReason.HANGUP)]  # finish and upload, then report
    assert not call.session.ended
    dest = {"Type": "S3", "BucketName": "recordings", "Key": "vm/a.wav"}
    out = call.succeed(start, {"RecordingDestination": dest}, dt=1)
    inv = only(out, E.InvokeHandler)
    assert inv.payload == event(2, "ACTION_SUCCESSFUL", leg_a("Disconnected"), action_data={
        **start.action.action_data(), "RecordingDestination": dest})
    assert "RecordingTerminatorUsed" not in inv.payload["ActionData"]
    out = call.actions(inv, play())  # no leg left: actions ignored, HANGUP follows
    hang = only(out, E.InvokeHandler)
    assert hang.payload == event(3, "HANGUP", leg_a("Disconnected"), action_data={
        "Type": "Hangup", "Parameters": {"SipResponseCode": 0, "CallId": A_ID, "ParticipantTag": "LEG-A"}})
    assert call.reply(hang, response()) == [E.EndTransaction("completed")]


def test_s4_caller_hanging_up_mid_recording_upload_failure_then_hangup() -> None:
    call = Call()
    start = run_record(call)
    assert isinstance(start, E.StartAction)
    call.hang_up(dt=8)
    inv = only(call.fail(start, "InvalidActionParameter", A.MSG_UPLOAD_FAILED, dt=10), E.InvokeHandler)
    assert inv.payload["InvocationEventType"] == "ACTION_FAILED"
    assert only(call.reply(inv, response()), E.InvokeHandler).payload["InvocationEventType"] == "HANGUP"


# ------------------------------------------------------------------------------------------ §5 VoiceFocus
def _vf(**params: Any) -> dict[str, Any]:
    return {"Type": "VoiceFocus", "Parameters": params}


def _answered(call: Call) -> E.InvokeHandler:
    out = call.actions(call.start(), {"Type": "Answer"})
    return only(out, E.InvokeHandler)


@pytest.mark.parametrize(("enable", "value"), [(True, True), (False, False), ("true", True), ("FALSE", False),
                                               ("True", True), (" false ", False)])
def test_s5_enable_bool_or_string_in_any_case(enable: Any, value: bool) -> None:
    call = Call()
    out = call.actions(_answered(call), _vf(Enable=enable))
    start = only(out, E.StartAction)
    assert start.action == A.VoiceFocus(call_id=A_ID, parameters={"CallId": A_ID, "Enable": value}, enable=value)
    inv = only(call.succeed(start), E.InvokeHandler)
    assert inv.payload == event(3, "ACTION_SUCCESSFUL", leg_a("Connected"),
                                action_data={"Type": "VoiceFocus", "Parameters": {"CallId": A_ID, "Enable": value}})


def test_s5_target_by_call_id_participant_tag_or_neither() -> None:
    call = Call()
    inv, dial = call.bridged()
    out = call.actions(inv, _vf(Enable=True, CallId=dial.call_id), _vf(Enable=True, ParticipantTag="LEG-B"),
                       _vf(Enable=False))
    targets = []
    while (starts := of(out, E.StartAction)):
        targets.append(starts[0].action.call_id)
        out = call.succeed(starts[0])
    assert targets == [dial.call_id, dial.call_id, A_ID]  # neither: the invoked leg (CallAndBridge's LEG-A)


VF_ERRORS: list[tuple[str, dict[str, Any], tuple[str, str]]] = [
    ("missing-enable", {}, ("MissingRequiredActionParameter", "Missing required action parameter.")),
    ("null-enable", {"Enable": None}, ("MissingRequiredActionParameter", "Missing required action parameter.")),
    ("enable-yes", {"Enable": "yes"}, ("InvalidActionParameter", "Enable parameter value is invalid.")),
    ("enable-number", {"Enable": 1}, ("InvalidActionParameter", "Enable parameter value is invalid.")),
    ("bad-call-id", {"Enable": True, "CallId": "call-zzz"}, BAD_TARGET),
    ("bad-tag", {"Enable": True, "ParticipantTag": "LEG-B"}, BAD_TARGET),
    ("bad-tag-spelling", {"Enable": True, "ParticipantTag": "leg-a"}, BAD_TARGET),
]


@pytest.mark.parametrize(("name", "params", "error"), VF_ERRORS, ids=[v[0] for v in VF_ERRORS])
def test_s5_errors(name: str, params: dict[str, Any], error: tuple[str, str]) -> None:
    call = Call()
    out = call.actions(_answered(call), _vf(**params))
    data = only(out, E.InvokeHandler).payload["ActionData"]
    assert (data["ErrorType"], data["ErrorMessage"]) == error and of(out, E.StartAction) == []


def test_s5_call_not_answered_when_the_leg_is_not_connected() -> None:
    call = Call()
    out = call.actions(call.start(), _vf(Enable=True, CallId=A_ID))
    assert only(out, E.InvokeHandler).payload == event(2, "ACTION_FAILED", leg_a(), action_data={
        "Type": "VoiceFocus", "Parameters": {"CallId": A_ID, "Enable": True},
        "ErrorType": "CallNotAnswered", "ErrorMessage": "Call not answered"})


def test_s5_system_exception_from_the_runtime_is_passed_on() -> None:
    call = Call()
    out = call.actions(_answered(call), _vf(Enable=True))
    out = call.fail(only(out, E.StartAction), "SystemException", "System error while executing an action.")
    data = only(out, E.InvokeHandler).payload["ActionData"]
    assert data["ErrorType"] == "SystemException"


def test_s5_voice_focus_toggle_from_digits_like_the_aws_sample() -> None:
    """The aws-samples voice-focus flow: VoiceFocus on both legs, ReceiveDigits on both, toggle on a key."""
    call = Call()
    inv, dial = call.bridged()
    out = call.actions(inv, _vf(Enable="True", CallId=A_ID), _vf(Enable="True", CallId=dial.call_id),
                       {"Type": "ReceiveDigits", "Parameters": {"CallId": A_ID, "InputDigitsRegex": "^[01]$",
                                                                "InBetweenDigitsDurationInMilliseconds": 500,
                                                                "FlushDigitsDurationInMilliseconds": 1000}})
    out = call.succeed(only(out, E.StartAction))
    out = call.succeed(only(out, E.StartAction))
    rd = only(out, E.StartAction)
    call.reply(only(out, E.InvokeHandler), response())
    inv = only(call.feed(V.DigitsReceived(rd.action_id, "0"), dt=5), E.InvokeHandler)
    out = call.actions(inv, _vf(Enable=False, CallId=A_ID))
    assert only(out, E.StartAction).action == A.VoiceFocus(call_id=A_ID, parameters={"CallId": A_ID, "Enable": False},
                                                           enable=False)
