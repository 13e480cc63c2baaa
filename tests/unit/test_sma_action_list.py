"""SPEC §3 (running an action list), rule by rule, as transcripts."""

from __future__ import annotations

from typing import Any

import pytest

from gatewayd.sma import SessionConfig
from gatewayd.sma import actions as A
from gatewayd.sma import effects as E
from gatewayd.sma import events as V
from tests.unit.sma_transcript import (
    A_ID,
    CALLED,
    CONFIG,
    START_MS,
    Call,
    bridge,
    event,
    hangup,
    leg_a,
    leg_b,
    of,
    only,
    pause,
    play,
    receive_digits,
    record,
    response,
    s3,
)

PAAGD = {"Type": "PlayAudioAndGetDigits",
         "Parameters": {"AudioSource": s3("menu.wav"), "RepeatDurationInMilliseconds": 5000}}
SAGD = {"Type": "SpeakAndGetDigits",
        "Parameters": {"SpeechParameters": {"Text": "Press one"}, "RepeatDurationInMilliseconds": 5000}}


def kinds(effects: list[E.Effect]) -> list[str]:
    return [type(e).__name__ for e in effects]


# ------------------------------------------------------------------------------------------ rule 1
def test_s3_r1_actions_run_in_order_one_at_a_time() -> None:
    call = Call()
    out = call.actions(call.start(), play("one.wav"), pause(200), play("two.wav"))
    first = only(out, E.StartAction)
    assert isinstance(first.action, A.PlayAudio) and first.action.source == A.AudioSource("prompts", "one.wav")
    second = only(call.succeed(first, dt=1), E.StartAction)
    assert isinstance(second.action, A.Pause) and second.action.duration_ms == 200
    third = only(call.succeed(second, dt=0.2), E.StartAction)
    assert third.action.parameters["AudioSource"]["Key"] == "two.wav"
    assert second.action_id != first.action_id != third.action_id


def test_s3_r1_action_without_target_runs_on_the_leg_the_last_event_was_about() -> None:
    call = Call()
    inv, dial = call.bridged()
    out = call.actions(inv, receive_digits(ParticipantTag="LEG-B"))  # arm digits on LEG-B
    rd = only(out, E.StartAction)
    inv = only(out, E.InvokeHandler)  # end of list: ACTION_SUCCESSFUL(ReceiveDigits)
    call.reply(inv, response())
    inv = only(call.feed(V.DigitsReceived(rd.action_id, "12#"), dt=2), E.InvokeHandler)
    assert inv.payload["ActionData"]["Parameters"]["CallId"] == dial.call_id
    out = call.actions(inv, play("for-b.wav"))  # no CallId/ParticipantTag: the DIGITS_RECEIVED leg
    assert only(out, E.StartAction).action.call_id == dial.call_id


def test_s3_r1_empty_participant_tag_means_unspecified() -> None:
    call = Call()
    out = call.actions(call.start(), play(ParticipantTag="", CallId=""))
    start = only(out, E.StartAction)
    assert start.action.call_id == A_ID and "ParticipantTag" not in start.action.parameters


def test_s3_r1_call_id_wins_over_participant_tag() -> None:
    call = Call()
    inv, _ = call.bridged()
    out = call.actions(inv, play(CallId=A_ID, ParticipantTag="LEG-B"))
    start = only(out, E.StartAction)
    assert start.action.call_id == A_ID
    assert start.action.parameters["CallId"] == A_ID and start.action.parameters["ParticipantTag"] == "LEG-A"


@pytest.mark.parametrize("target", [{"CallId": "no-such-call"}, {"ParticipantTag": "LEG-B"},
                                    {"ParticipantTag": "LEG-C"}, {"CallId": 7}], ids=str)
def test_s3_r1_unknown_target_fails_with_invalid_target(target: dict[str, Any]) -> None:
    call = Call()
    out = call.actions(call.start(), play(**target))
    data = only(out, E.InvokeHandler).payload["ActionData"]
    assert (data["ErrorType"], data["ErrorMessage"]) == ("InvalidActionParameter",
                                                         "CallId or ParticipantTag parameter for action is invalid.")
    assert of(out, E.AnswerLeg) == []


# ------------------------------------------------------------------------------------------ rule 2
def test_s3_r2_first_runtime_failure_sends_action_failed_and_drops_the_rest() -> None:
    call = Call()
    out = call.actions(call.start(), play("one.wav"), play("two.wav"), pause(100))
    out = call.fail(only(out, E.StartAction), "InvalidAudioSource", "Audio Source parameter value is invalid.")
    inv = only(out, E.InvokeHandler)
    assert inv.payload["InvocationEventType"] == "ACTION_FAILED"
    assert inv.payload["ActionData"]["Parameters"]["AudioSource"]["Key"] == "one.wav"
    assert call.reply(inv, response()) == []  # nothing left of the old list


def test_s3_r2_validation_failure_mid_list_after_earlier_actions_ran() -> None:
    call = Call()
    out = call.actions(call.start(), pause(100), pause(-5), play())
    out = call.succeed(only(out, E.StartAction))
    inv = only(out, E.InvokeHandler)
    assert inv.payload == event(2, "ACTION_FAILED", leg_a("Connected"), action_data={
        "Type": "Pause", "Parameters": {"CallId": A_ID, "DurationInMilliseconds": -5},
        "ErrorType": "InvalidActionParameter", "ErrorMessage": "DurationInMilliseconds parameter value is invalid."})
    assert of(out, E.StartAction) == []


# ------------------------------------------------------------------------------------------ rule 3
def test_s3_r3_exhausted_list_sends_one_action_successful_for_the_last_action() -> None:
    call = Call()
    out = call.actions(call.start(), pause(100), play("last.wav", Repeat="2"))
    out = call.succeed(only(out, E.StartAction))
    assert of(out, E.InvokeHandler) == []  # no report for the first
    out = call.succeed(only(out, E.StartAction), dt=2)
    assert only(out, E.InvokeHandler).payload == event(2, "ACTION_SUCCESSFUL", leg_a("Connected"), action_data={
        "Type": "PlayAudio", "Parameters": {"CallId": A_ID, "AudioSource": s3("last.wav"), "Repeat": 2}})


# ------------------------------------------------------------------------------------------ rule 4
def _start_reporter(call: Call, action: dict[str, Any]) -> tuple[E.InvokeHandler, str]:
    """Run [action, PlayAudio rest.wav] until `action` reports; return that invocation."""
    out = call.actions(call.start(), action, play("rest.wav"))
    if action["Type"] == "CallAndBridge":
        out = call.feed(V.LegAnswered(only(out, E.DialLeg).call_id), dt=4)
    else:
        out = call.succeed(only(out, E.StartAction), {"ReceivedDigits": "12"}, dt=4)
    assert of(out, E.StartAction) == []  # the rest waits for the response
    return only(out, E.InvokeHandler), action["Type"]


@pytest.mark.parametrize("action", [record(), PAAGD, SAGD, bridge()],
                         ids=["RecordAudio", "PlayAudioAndGetDigits", "SpeakAndGetDigits", "CallAndBridge"])
def test_s3_r4_reporting_actions_report_mid_list_and_new_actions_replace_the_rest(action: dict[str, Any]) -> None:
    call = Call()
    inv, type_ = _start_reporter(call, action)
    assert inv.payload["InvocationEventType"] == "ACTION_SUCCESSFUL"
    assert inv.payload["ActionData"]["Type"] == type_
    out = call.actions(inv, pause(700, CallId=A_ID))
    start = only(out, E.StartAction)
    assert isinstance(start.action, A.Pause)  # rest.wav was replaced
    inv = only(call.succeed(start), E.InvokeHandler)
    assert inv.payload["ActionData"]["Type"] == "Pause"


@pytest.mark.parametrize("action", [record(), PAAGD, SAGD, bridge()],
                         ids=["RecordAudio", "PlayAudioAndGetDigits", "SpeakAndGetDigits", "CallAndBridge"])
def test_s3_r4_empty_response_after_a_mid_list_report_lets_the_rest_run(action: dict[str, Any]) -> None:
    call = Call()
    inv, _ = _start_reporter(call, action)
    out = call.reply(inv, response())
    start = only(out, E.StartAction)
    assert start.action.parameters["AudioSource"]["Key"] == "rest.wav"
    inv = only(call.succeed(start), E.InvokeHandler)  # then the end-of-list report for the last one
    assert inv.payload["ActionData"]["Parameters"]["AudioSource"]["Key"] == "rest.wav"


def test_s3_r4_reporting_action_last_in_the_list_reports_once() -> None:
    call = Call()
    out = call.actions(call.start(), pause(10), record())
    out = call.succeed(only(out, E.StartAction))
    out = call.succeed(only(out, E.StartAction), {"RecordingDestination": {"Key": "k"}})
    assert only(out, E.InvokeHandler).payload["ActionData"]["Type"] == "RecordAudio"
    assert call.reply(only(out, E.InvokeHandler), response()) == []


def test_s3_r4_play_audio_and_get_digits_result_and_failure() -> None:
    call = Call()
    out = call.actions(call.start(), PAAGD)
    start = only(out, E.StartAction)
    assert isinstance(start.action, A.PlayAudioAndGetDigits)
    assert start.action.digits == A.DigitCollection(regex=None, min_digits=0, max_digits=128, terminators=("#",),
                                                    between_digits_ms=5000, repeat=1, repeat_duration_ms=5000)
    out = call.succeed(start, {"ReceivedDigits": "1234"})
    data = only(out, E.InvokeHandler).payload["ActionData"]
    assert data["ReceivedDigits"] == "1234" and data["Parameters"]["TerminatorDigits"] == ["#"]
    out = call.actions(only(out, E.InvokeHandler), PAAGD)
    out = call.fail(only(out, E.StartAction), "InvalidActionParameter", "No digits received.")
    assert only(out, E.InvokeHandler).payload["InvocationEventType"] == "ACTION_FAILED"


# ------------------------------------------------------------------------------------------ rule 5
def test_s3_r5_receive_digits_succeeds_at_once_and_keeps_listening() -> None:
    call = Call()
    out = call.actions(call.start(), receive_digits(), play("music.wav"))
    rd, music = of(out, E.StartAction)  # ReceiveDigits armed, the list went on at once
    assert isinstance(rd.action, A.ReceiveDigits) and rd.action.regex == r"^\d{2}#$"
    assert (rd.action.between_digits_ms, rd.action.flush_ms) == (1000, 10000)
    inv = only(call.feed(V.DigitsReceived(rd.action_id, "11#"), dt=3), E.InvokeHandler)
    assert inv.payload == event(2, "DIGITS_RECEIVED", leg_a("Connected"), action_data={
        "Type": "ReceiveDigits", "ReceivedDigits": "11#",
        "Parameters": {"CallId": A_ID, "InputDigitsRegex": r"^\d{2}#$", "InBetweenDigitsDurationInMilliseconds": 1000,
                       "FlushDigitsDurationInMilliseconds": 10000}})
    call.reply(inv, response())
    inv = only(call.feed(V.DigitsReceived(rd.action_id, "22#"), dt=3), E.InvokeHandler)  # still listening
    assert inv.payload["ActionData"]["ReceivedDigits"] == "22#"
    assert music.action_id not in (rd.action_id,)


def test_s3_r5_receive_digits_last_in_list_reports_empty_received_digits() -> None:
    call = Call()
    out = call.actions(call.start(), receive_digits())
    data = only(out, E.InvokeHandler).payload["ActionData"]
    assert data["Type"] == "ReceiveDigits" and data["ReceivedDigits"] == ""


def test_s3_r5_a_new_receive_digits_replaces_the_armed_one() -> None:
    call = Call()
    out = call.actions(call.start(), receive_digits())
    first = only(out, E.StartAction)
    out = call.actions(only(out, E.InvokeHandler), receive_digits(InputDigitsRegex="^9$"))
    assert out[0] == E.StopAction(first.action_id, A_ID, E.StopReason.CANCEL)
    second = only(out, E.StartAction)
    assert call.feed(V.DigitsReceived(first.action_id, "11#")) == []  # the old one is gone
    call.reply(only(out, E.InvokeHandler), response())
    assert only(call.feed(V.DigitsReceived(second.action_id, "9")), E.InvokeHandler)


def test_s3_r5_digits_received_response_waits_for_the_running_action() -> None:
    call = Call()
    out = call.actions(call.start(), receive_digits(), play("long.wav"), play("dropped.wav"))
    rd, music = of(out, E.StartAction)
    inv = only(call.feed(V.DigitsReceived(rd.action_id, "11#"), dt=1), E.InvokeHandler)
    assert call.actions(inv, pause(300)) == []  # long.wav keeps playing (not interruptible by this)
    out = call.succeed(music, dt=5)
    assert isinstance(only(out, E.StartAction).action, A.Pause)  # then the new list replaced dropped.wav


# ------------------------------------------------------------------------------------------ rule 6
def test_s3_r6_after_the_last_action_and_an_empty_response_the_call_stays_up() -> None:
    call = Call()
    out = call.actions(call.start(), pause(10))
    out = call.succeed(only(out, E.StartAction))
    assert call.reply(only(out, E.InvokeHandler), response()) == []
    assert call.timer(3600) == [] and not call.session.ended and call.session.get_timer() is None
    inv = only(call.hang_up(), E.InvokeHandler)
    assert inv.payload["InvocationEventType"] == "HANGUP"
    assert call.reply(inv, response()) == [E.EndTransaction("completed")]


# ------------------------------------------------------------------------------------------ rule 7
def test_s3_r7_hangup_action_on_one_leg_call_sends_hangup_not_action_successful() -> None:
    call = Call()
    out = call.actions(call.start(), pause(100), play(), hangup(SipResponseCode="0", ParticipantTag=""))
    out = call.succeed(only(out, E.StartAction))
    out = call.succeed(only(out, E.StartAction))
    assert kinds(out) == ["HangupLeg", "InvokeHandler"]
    assert only(out, E.HangupLeg) == E.HangupLeg(A_ID, 0)
    inv = only(out, E.InvokeHandler)
    assert inv.payload == event(2, "HANGUP", leg_a("Disconnected"), action_data={
        "Type": "Hangup", "Parameters": {"CallId": A_ID, "SipResponseCode": 0, "ParticipantTag": "LEG-A"}})
    assert call.actions(inv, play()) == [E.EndTransaction("completed")]  # the response is ignored


def test_s3_r7_actions_after_a_one_leg_hangup_are_dropped() -> None:
    call = Call()
    out = call.actions(call.start(), hangup(), play("never.wav"))
    assert kinds(out) == ["HangupLeg", "InvokeHandler"]
    assert call.reply(only(out, E.InvokeHandler), response()) == [E.EndTransaction("completed")]


def test_s3_r7_one_leg_hanging_up_does_not_hang_up_the_other() -> None:
    call = Call()
    inv, dial = call.bridged()
    call.reply(inv, response())
    out = call.hang_up(dial.call_id, 0, dt=30)
    assert out[0] == E.UnbridgeLegs(A_ID, dial.call_id)
    assert of(out, E.HangupLeg) == []
    inv = only(out, E.InvokeHandler)
    assert inv.payload == event(3, "HANGUP", leg_a("Connected"), leg_b("Disconnected", start_ms=START_MS),
                                action_data={"Type": "Hangup", "Parameters": {
                                    "SipResponseCode": 0, "CallId": dial.call_id, "ParticipantTag": "LEG-B"}})
    out = call.actions(inv, hangup(CallId=A_ID))  # the response runs: LEG-A is still connected
    assert of(out, E.HangupLeg) == [E.HangupLeg(A_ID, 0)]
    inv = only(out, E.InvokeHandler)
    assert inv.payload["ActionData"]["Parameters"]["CallId"] == A_ID
    assert call.actions(inv, play()) == [E.EndTransaction("completed")]


def test_s3_r7_hangup_action_on_a_bridged_leg_reports_hangup_and_the_rest_of_the_list_runs() -> None:
    call = Call()
    inv, _ = call.bridged()
    out = call.actions(inv, hangup(ParticipantTag="LEG-B"), play("after.wav"))
    assert kinds(out) == ["HangupLeg", "UnbridgeLegs", "InvokeHandler"]
    inv = only(out, E.InvokeHandler)
    assert inv.payload["InvocationEventType"] == "HANGUP"
    assert inv.payload["CallDetails"]["Participants"][1]["Status"] == "Disconnected"
    out = call.reply(inv, response())
    assert only(out, E.StartAction).action.call_id == A_ID


# ------------------------------------------------------------------------------------------ rule 8
def test_s3_r8_no_actions_keeps_ringing_then_rejects_after_30_s() -> None:
    call = Call()
    assert call.reply(call.start(), response()) == []
    assert call.session.get_timer() == pytest.approx(call.now + 30.0)
    assert call.timer(29.9) == []
    out = call.timer(0.1)
    assert out[0] == E.HangupLeg(A_ID, 480)
    inv = only(out, E.InvokeHandler)
    assert inv.payload == event(2, "HANGUP", leg_a("Disconnected"), action_data={
        "Type": "Hangup", "Parameters": {"SipResponseCode": 480, "CallId": A_ID, "ParticipantTag": "LEG-A"}})
    assert call.actions(inv, play()) == [E.EndTransaction("completed")]


MEDIA_ACTIONS = [pause(10), play(), PAAGD, {"Type": "Speak", "Parameters": {"Text": "hi"}}, SAGD,
                 {"Type": "SendDigits", "Parameters": {"Digits": "123"}}, record(), receive_digits(),
                 {"Type": "StartCallRecording", "Parameters": {"Track": "BOTH",
                                                               "Destination": {"Type": "S3", "Location": "rec"}}}]


@pytest.mark.parametrize("action", MEDIA_ACTIONS, ids=[a["Type"] for a in MEDIA_ACTIONS])
def test_s3_r8_media_actions_answer_implicitly(action: dict[str, Any]) -> None:
    call = Call()
    out = call.actions(call.start(), action)
    assert out[0] == E.AnswerLeg(A_ID)
    assert action["Type"] == only(out, E.StartAction).action.TYPE
    call.timer(31)
    assert of(call.log, E.HangupLeg) == []  # no ring timeout once answered


def test_s3_r8_answer_action_answers_explicitly() -> None:
    call = Call()
    out = call.actions(call.start(), {"Type": "Answer"})
    assert out[0] == E.AnswerLeg(A_ID)
    inv = only(out, E.InvokeHandler)
    assert inv.payload == event(2, "ACTION_SUCCESSFUL", leg_a("Connected"),
                                action_data={"Type": "Answer", "Parameters": {"CallId": A_ID}})
    call.reply(inv, response())
    assert call.timer(60) == []  # answered: no ring timeout


def test_s3_r8_answer_on_an_answered_leg_is_a_no_op() -> None:
    call = Call()
    out = call.actions(call.start(), play(), {"Type": "Answer", "Parameters": {}})
    out = call.succeed(only(out, E.StartAction))
    assert of(out, E.AnswerLeg) == [] and only(out, E.InvokeHandler).payload["ActionData"]["Type"] == "Answer"


def test_s3_r8_hangup_first_rejects_without_answering() -> None:
    call = Call()
    out = call.actions(call.start(), hangup(SipResponseCode=486))
    assert kinds(out) == ["HangupLeg", "InvokeHandler"] and out[0] == E.HangupLeg(A_ID, 486)


def test_s3_r8_voice_focus_does_not_answer() -> None:
    call = Call()
    out = call.actions(call.start(), {"Type": "VoiceFocus", "Parameters": {"Enable": True}})
    assert of(out, E.AnswerLeg) == []
    assert only(out, E.InvokeHandler).payload["ActionData"]["ErrorType"] == "CallNotAnswered"


# ------------------------------------------------------------------------------------------ rule 9
def test_s3_r9_handler_timeout_20_s_then_one_retry_then_hang_up_480() -> None:
    call = Call()
    first = call.start()
    assert call.session.get_timer() == first.deadline == call.now + 20
    assert call.timer(19.9) == []
    retry = only(call.timer(0.1), E.InvokeHandler)
    assert retry.payload == first.payload and retry.attempt == 2 and retry.invocation_id != first.invocation_id
    out = call.timer(20)
    assert out == [E.HangupLeg(A_ID, 480), E.EndTransaction("handler-failed")]
    assert call.session.ended and call.reply(retry, response(play())) == []


def test_s3_r9_handler_error_retries_with_the_same_payload_and_the_retry_can_succeed() -> None:
    call = Call()
    first = call.start()
    retry = only(call.feed(V.HandlerFailed(first.invocation_id, V.InvocationError.FUNCTION_ERROR, "boom")),
                 E.InvokeHandler)
    assert retry.payload == first.payload and retry.attempt == 2
    assert call.reply(first, response(play())) == []  # a late answer to the first attempt is ignored
    out = call.reply(retry, response(play()))
    assert kinds(out) == ["AnswerLeg", "StartAction"]
    inv = only(call.succeed(only(out, E.StartAction)), E.InvokeHandler)
    assert inv.payload["Sequence"] == 2  # the retry did not use up a Sequence number


def test_s3_r9_two_failures_on_a_bridged_call_hang_up_both_legs() -> None:
    call = Call()
    inv, dial = call.bridged()
    retry = only(call.feed(V.HandlerFailed(inv.invocation_id, V.InvocationError.TRANSPORT)), E.InvokeHandler)
    out = call.feed(V.HandlerFailed(retry.invocation_id, V.InvocationError.BAD_RESPONSE))
    assert out == [E.UnbridgeLegs(A_ID, dial.call_id), E.HangupLeg(A_ID, 480), E.HangupLeg(dial.call_id, 480),
                   E.EndTransaction("handler-failed")]


def test_s3_r9_timeout_is_configurable() -> None:
    call = Call(SessionConfig(**{**CONFIG.__dict__, "handler_timeout_s": 3.0}))
    inv = call.start()
    assert inv.timeout_s == 3.0 and inv.deadline == call.now + 3.0
    assert only(call.timer(3.0), E.InvokeHandler).attempt == 2


def test_s3_r9_at_most_1000_invocations_per_call() -> None:
    call = Call()
    inv = call.start()
    for _ in range(999):
        inv = only(call.reply(inv, {"SchemaVersion": "9"}), E.InvokeHandler)  # an INVALID_LAMBDA_RESPONSE loop
    assert inv.payload["Sequence"] == 1000
    out = call.reply(inv, {"SchemaVersion": "9"})
    assert out == [E.HangupLeg(A_ID, 480), E.EndTransaction("invocation-limit")]
    assert call.session.stats.invocations == 1000


# ------------------------------------------------------------------------------------------ rule 10
def _update(call: Call) -> E.InvokeHandler:
    return only(call.feed(V.CallUpdateRequested({"JoinToken": "abc"}), dt=1), E.InvokeHandler)


@pytest.mark.parametrize("action", [play(), record(), pause(60000)], ids=["PlayAudio", "RecordAudio", "Pause"])
def test_s3_r10_call_update_interrupts_interruptible_actions(action: dict[str, Any]) -> None:
    call = Call()
    out = call.actions(call.start(), action, play("never.wav"))
    running = only(out, E.StartAction)
    inv = _update(call)
    assert inv.payload == event(2, "CALL_UPDATE_REQUESTED", leg_a("Connected"), action_data={
        "Type": "CallUpdateRequest", "Parameters": {"Arguments": {"JoinToken": "abc"}}})
    out = call.actions(inv, play("new.wav"))
    assert out[0] == E.StopAction(running.action_id, A_ID, E.StopReason.INTERRUPT)
    assert only(out, E.StartAction).action.parameters["AudioSource"]["Key"] == "new.wav"
    interrupted = only(out, E.InvokeHandler)
    assert interrupted.payload == event(3, "ACTION_INTERRUPTED", leg_a("Connected"),
                                        action_data=running.action.action_data())
    assert call.actions(interrupted, hangup()) == []  # informational: the response is ignored
    assert call.succeed(running) == []  # a result racing the interruption is ignored


def test_s3_r10_non_interruptible_action_finishes_before_the_update_list() -> None:
    call = Call()
    out = call.actions(call.start(), PAAGD, play("dropped.wav"))
    running = only(out, E.StartAction)
    out = call.actions(_update(call), play("new.wav"))
    assert of(out, E.StopAction) == [] and of(out, E.StartAction) == []
    out = call.succeed(running, {"ReceivedDigits": "5"})
    inv = only(out, E.InvokeHandler)  # PAAGD still reports
    assert inv.payload["ActionData"]["ReceivedDigits"] == "5"
    out = call.reply(inv, response())
    assert only(out, E.StartAction).action.parameters["AudioSource"]["Key"] == "new.wav"


def test_s3_r10_call_update_with_an_empty_response_interrupts_nothing() -> None:
    call = Call()
    out = call.actions(call.start(), play("music.wav"), play("next.wav"))
    running = only(out, E.StartAction)
    assert call.reply(_update(call), response()) == []
    out = call.succeed(running)
    assert only(out, E.StartAction).action.parameters["AudioSource"]["Key"] == "next.wav"


def test_s3_r10_call_update_on_an_idle_call_runs_the_new_actions() -> None:
    call = Call()
    out = call.actions(call.start(), play())
    call.reply(only(call.succeed(only(out, E.StartAction)), E.InvokeHandler), response())
    out = call.actions(_update(call), play("now.wav"))
    assert of(out, E.InvokeHandler) == [] and only(out, E.StartAction)


def test_s3_runtime_interruption_sends_action_interrupted_and_the_list_goes_on() -> None:
    call = Call()
    out = call.actions(call.start(), play(), pause(5))
    out = call.feed(V.ActionInterrupted(only(out, E.StartAction).action_id))
    assert only(out, E.InvokeHandler).payload["InvocationEventType"] == "ACTION_INTERRUPTED"
    assert isinstance(only(out, E.StartAction).action, A.Pause)


# ------------------------------------------------------------------------------------------ action set
@pytest.mark.parametrize("type_", ["JoinChimeMeeting", "ModifyChimeMeetingAttendees", "StartBotConversation"])
def test_s3_cloud_only_actions_fail_with_system_exception(type_: str) -> None:
    call = Call()
    out = call.actions(call.start(), {"Type": type_, "Parameters": {"JoinToken": "t"}}, play())
    assert only(out, E.InvokeHandler).payload == event(2, "ACTION_FAILED", leg_a(), action_data={
        "Type": type_, "Parameters": {"JoinToken": "t"}, "ErrorType": "SystemException",
        "ErrorMessage": f"{type_} is not supported by this gateway"})
    assert of(out, E.StartAction) == []


def test_s3_runtime_actions_are_handed_over_typed() -> None:
    call = Call()
    out = call.actions(call.start(), {"Type": "SendDigits", "Parameters": {"Digits": "1,2a#"}},
                       {"Type": "Speak", "Parameters": {"Text": "Hello", "VoiceId": "Matthew"}},
                       {"Type": "StartCallRecording", "Parameters": {
                           "Track": "incoming", "Destination": {"Type": "S3", "Location": "calls/support/en"}}},
                       {"Type": "PauseCallRecording"}, {"Type": "ResumeCallRecording"}, {"Type": "StopCallRecording"})
    seen: list[A.Action] = []
    while (starts := of(out, E.StartAction)):
        seen.append(starts[0].action)
        out = call.succeed(starts[0])
    assert seen[0] == A.SendDigits(call_id=A_ID, parameters={"CallId": A_ID, "Digits": "1,2A#",
                                                             "ToneDurationInMilliseconds": 250},
                                   digits="1,2A#", tone_ms=250)
    assert isinstance(seen[1], A.Speak) and seen[1].speech == A.Speech(text="Hello", voice_id="Matthew")
    assert isinstance(seen[2], A.StartCallRecording)
    assert (seen[2].track, seen[2].bucket, seen[2].prefix) == ("INCOMING", "calls", "support/en")
    assert [a.TYPE for a in seen[3:]] == ["PauseCallRecording", "ResumeCallRecording", "StopCallRecording"]


# ------------------------------------------------------------------------------------------ CallAndBridge
def test_s3_call_and_bridge_success_adds_leg_b_and_bridges() -> None:
    call = Call()
    out = call.actions(call.start(), bridge(SipHeaders={"X-Ticket": "9"}))
    dial = only(out, E.DialLeg)
    assert dial == E.DialLeg("call-b-1", A.BridgeEndpoint("PSTN", "+15550123"), CALLED, 30.0, {"X-Ticket": "9"})
    assert of(out, E.AnswerLeg) == []  # LEG-A is answered when LEG-B answers
    out = call.feed(V.LegRinging(dial.call_id), dt=1)
    assert out == []  # no RINGING for a CallAndBridge leg
    out = call.feed(V.LegAnswered(dial.call_id), dt=2)
    assert kinds(out) == ["AnswerLeg", "BridgeLegs", "InvokeHandler"]
    assert out[1] == E.BridgeLegs(A_ID, dial.call_id)
    assert only(out, E.InvokeHandler).payload == event(
        2, "ACTION_SUCCESSFUL", leg_a("Connected"), leg_b("Connected", start_ms=START_MS), action_data={
            "Type": "CallAndBridge", "Parameters": {
                "CallId": A_ID, "CallerIdNumber": CALLED, "CallTimeoutSeconds": 30,
                "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+15550123"}], "SipHeaders": {"X-Ticket": "9"}}})


def test_s3_call_and_bridge_failure_is_call_not_answered() -> None:
    call = Call()
    out = call.actions(call.start(), bridge(CallTimeoutSeconds="20"), play("never.wav"))
    out = call.feed(V.LegFailed(only(out, E.DialLeg).call_id, 486, "busy"), dt=3)
    assert only(out, E.InvokeHandler).payload == event(2, "ACTION_FAILED", leg_a(), action_data={
        "Type": "CallAndBridge", "Parameters": {
            "CallId": A_ID, "CallerIdNumber": CALLED, "CallTimeoutSeconds": 20,
            "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": "+15550123"}]},
        "ErrorType": "CallNotAnswered", "ErrorMessage": "Call not answered"})


def test_s3_call_and_bridge_times_out_after_call_timeout_seconds() -> None:
    call = Call()
    out = call.actions(call.start(), bridge(CallTimeoutSeconds=15))
    dial = only(out, E.DialLeg)
    assert call.session.get_timer() == pytest.approx(call.now + 15)
    out = call.timer(15)
    assert out[0] == E.HangupLeg(dial.call_id, 0)
    assert only(out, E.InvokeHandler).payload["ActionData"]["ErrorType"] == "CallNotAnswered"
    assert call.feed(V.LegAnswered(dial.call_id)) == []  # too late


def test_s3_call_and_bridge_with_ringback_answers_leg_a_first() -> None:
    call = Call()
    out = call.actions(call.start(), bridge(RingbackTone=s3("ring.wav")))
    assert kinds(out) == ["AnswerLeg", "DialLeg"]
    dial = only(out, E.DialLeg)
    assert (dial.ringback, dial.ringback_to) == (A.AudioSource("prompts", "ring.wav"), A_ID)


def test_s3_caller_hanging_up_while_leg_b_rings_cancels_it() -> None:
    call = Call()
    out = call.actions(call.start(), bridge())
    dial = only(out, E.DialLeg)
    out = call.hang_up(dt=5)
    assert out[0] == E.HangupLeg(dial.call_id, 0)
    inv = only(out, E.InvokeHandler)
    assert inv.payload["InvocationEventType"] == "HANGUP"
    assert len(inv.payload["CallDetails"]["Participants"]) == 1
    assert call.reply(inv, response()) == [E.EndTransaction("completed")]


def test_s3_second_call_and_bridge_while_leg_b_is_up_fails() -> None:
    call = Call()
    inv, _ = call.bridged()
    out = call.actions(inv, bridge("+15550999"))
    assert only(out, E.InvokeHandler).payload["ActionData"]["ErrorType"] == "SystemException"
    assert of(out, E.DialLeg) == []


def test_s3_leg_b_that_hung_up_is_replaced_by_a_new_call_and_bridge() -> None:
    call = Call()
    inv, dial = call.bridged()
    call.reply(inv, response())
    inv = only(call.hang_up(dial.call_id, dt=1), E.InvokeHandler)
    out = call.actions(inv, bridge("+15550999", CallId=A_ID))
    second = only(out, E.DialLeg)
    inv = only(call.feed(V.LegAnswered(second.call_id), dt=1), E.InvokeHandler)
    parts = inv.payload["CallDetails"]["Participants"]
    assert [(p["CallId"], p["Status"]) for p in parts] == [(A_ID, "Connected"), ("call-b-2", "Connected")]
    assert parts[1]["StartTimeInMilliseconds"] == str(START_MS + 2000)  # dialled 2 s after the call began


def test_s3_r8_ring_timeout_waits_for_a_call_and_bridge_in_progress() -> None:
    call = Call()
    out = call.actions(call.start(), bridge(CallTimeoutSeconds=60))
    dial = only(out, E.DialLeg)
    assert call.timer(31) == []  # LEG-A keeps ringing while LEG-B is dialled
    out = call.feed(V.LegFailed(dial.call_id, 480), dt=14)
    call.reply(only(out, E.InvokeHandler), response())  # ACTION_FAILED answered with nothing
    assert call.timer(29.9) == []
    out = call.timer(0.1)
    assert out[0] == E.HangupLeg(A_ID, 480)


def test_s3_r8_ring_timeout_while_dialling_until_the_dial_times_out() -> None:
    call = Call()
    out = call.actions(call.start(), bridge(CallTimeoutSeconds=40))
    dial = only(out, E.DialLeg)
    out = call.timer(40)
    assert out[0] == E.HangupLeg(dial.call_id, 0) and of(out, E.HangupLeg) == [E.HangupLeg(dial.call_id, 0)]
    assert only(out, E.InvokeHandler).payload["ActionData"]["ErrorType"] == "CallNotAnswered"
