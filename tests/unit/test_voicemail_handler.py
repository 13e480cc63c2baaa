"""The bundled voicemail handler, run against the SMA engine as a transcript (JSON in, JSON out)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gatewayd.handlers import voicemail
from gatewayd.sma import actions as A
from gatewayd.sma import effects as E
from tests.unit.sma_transcript import A_ID, Call, of, only

DEST = {"Type": "S3", "BucketName": "gatewayd-recordings", "Key": "voicemail/m1.wav"}


def handle(call: Call, inv: E.InvokeHandler) -> list[E.Effect]:
    """Invoke the handler as Lambda would (JSON both ways) and feed its answer to the engine."""
    response = json.loads(json.dumps(voicemail.handler(json.loads(json.dumps(inv.payload)), None)))
    return call.reply(inv, response)


def starts(out: list[E.Effect]) -> list[A.Action]:
    return [s.action for s in of(out, E.StartAction)]


def test_new_call_plays_greeting_and_beep_then_records() -> None:
    call = Call()
    out = handle(call, call.start())
    assert out[0] == E.AnswerLeg(A_ID)
    greeting = only(out, E.StartAction)
    assert greeting.action == A.PlayAudio(
        call_id=A_ID, parameters={"CallId": A_ID, "AudioSource": {"Type": "S3", "BucketName": "gatewayd-prompts",
                                                                  "Key": "voicemail/greeting.wav"}, "Repeat": 1},
        source=A.AudioSource("gatewayd-prompts", "voicemail/greeting.wav"))
    beep = only(call.succeed(greeting, dt=4), E.StartAction)
    assert isinstance(beep.action, A.PlayAudio) and beep.action.source.key == "voicemail/beep.wav"
    rec = only(call.succeed(beep, dt=1), E.StartAction)
    assert rec.action == A.RecordAudio(
        call_id=A_ID, parameters={"CallId": A_ID, "DurationInSeconds": 120, "SilenceDurationInSeconds": 5,
                                  "SilenceThreshold": 200, "RecordingTerminators": ["#"],
                                  "RecordingDestination": {"Type": "S3", "BucketName": "gatewayd-recordings",
                                                           "Prefix": "voicemail"}},
        bucket="gatewayd-recordings", prefix="voicemail", max_duration_ms=120000, silence_duration_ms=5000,
        silence_threshold=200, terminators=("#",))


def _to_recording(call: Call) -> E.StartAction:
    out = handle(call, call.start())
    out = call.succeed(only(out, E.StartAction))
    return only(call.succeed(only(out, E.StartAction)), E.StartAction)


def test_recording_is_played_back_then_the_call_is_hung_up() -> None:
    call = Call()
    rec = _to_recording(call)
    out = call.succeed(rec, {"RecordingDestination": DEST, "RecordingTerminatorUsed": "#"}, dt=20)
    inv = only(out, E.InvokeHandler)
    out = handle(call, inv)
    playback = only(out, E.StartAction)
    assert isinstance(playback.action, A.PlayAudio)
    assert playback.action.source == A.AudioSource("gatewayd-recordings", "voicemail/m1.wav")
    out = call.succeed(playback, dt=20)
    assert out[0] == E.HangupLeg(A_ID, 0)
    hangup = only(out, E.InvokeHandler)
    assert hangup.payload["CallDetails"]["TransactionAttributes"] == {
        "Caller": "+15550199", "RecordingBucket": "gatewayd-recordings", "RecordingKey": "voicemail/m1.wav"}
    assert handle(call, hangup) == [E.EndTransaction("completed")]


def test_caller_hanging_up_while_recording_keeps_the_message() -> None:
    call = Call()
    rec = _to_recording(call)
    assert call.hang_up(dt=15) == [E.StopAction(rec.action_id, A_ID, E.StopReason.HANGUP)]
    inv = only(call.succeed(rec, {"RecordingDestination": DEST}, dt=1), E.InvokeHandler)
    out = handle(call, inv)
    assert starts(out) == []  # nobody to play it to
    hangup = only(out, E.InvokeHandler)
    assert hangup.payload["CallDetails"]["TransactionAttributes"]["RecordingKey"] == "voicemail/m1.wav"
    assert handle(call, hangup) == [E.EndTransaction("completed")]


def test_missing_greeting_is_skipped_and_the_message_still_taken() -> None:
    call = Call()
    out = handle(call, call.start())
    inv = only(call.fail(only(out, E.StartAction), "InvalidAudioSource", A.MSG_INVALID_AUDIO_SOURCE), E.InvokeHandler)
    out = handle(call, inv)
    beep = only(out, E.StartAction)
    assert isinstance(beep.action, A.PlayAudio) and beep.action.source.key == "voicemail/beep.wav"
    inv = only(call.fail(beep, "InvalidAudioSource", A.MSG_INVALID_AUDIO_SOURCE), E.InvokeHandler)
    assert [a.TYPE for a in starts(handle(call, inv))] == ["RecordAudio"]


def test_upload_failure_ends_the_call() -> None:
    call = Call()
    rec = _to_recording(call)
    inv = only(call.fail(rec, "InvalidActionParameter", A.MSG_UPLOAD_FAILED, dt=30), E.InvokeHandler)
    out = handle(call, inv)
    assert out[0] == E.HangupLeg(A_ID, 0)


def test_caller_hanging_up_during_the_greeting_ends_quietly() -> None:
    call = Call()
    handle(call, call.start())
    inv = only(call.hang_up(dt=2), E.InvokeHandler)
    assert inv.payload["InvocationEventType"] == "HANGUP"
    assert handle(call, inv) == [E.EndTransaction("completed")]


def test_environment_configures_buckets_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEMAIL_PROMPTS_BUCKET", "my-prompts")
    monkeypatch.setenv("VOICEMAIL_BUCKET", "my-messages")
    monkeypatch.setenv("VOICEMAIL_PREFIX", "box/42/")
    monkeypatch.setenv("VOICEMAIL_MAX_SECONDS", "30")
    monkeypatch.setenv("VOICEMAIL_SILENCE_SECONDS", "3")
    call = Call()
    out = handle(call, call.start())
    greeting = only(out, E.StartAction)
    assert isinstance(greeting.action, A.PlayAudio) and greeting.action.source.bucket == "my-prompts"
    rec = only(call.succeed(only(call.succeed(greeting), E.StartAction)), E.StartAction).action
    assert isinstance(rec, A.RecordAudio)
    assert (rec.bucket, rec.object_key("m.wav"), rec.max_duration_ms, rec.silence_duration_ms) == (
        "my-messages", "box/42/m.wav", 30000, 3000)


def test_invalid_lambda_response_hangs_up() -> None:
    event: dict[str, Any] = {"SchemaVersion": "1.0", "Sequence": 2, "InvocationEventType": "INVALID_LAMBDA_RESPONSE",
                             "CallDetails": {"Participants": [{"CallId": "c", "ParticipantTag": "LEG-A"}]},
                             "ErrorType": "SchemaVersionMismatch", "ErrorMessage": "x"}
    assert voicemail.handler(event, None)["Actions"] == [
        {"Type": "Hangup", "Parameters": {"CallId": "c", "SipResponseCode": "0"}}]
