"""The bundled record-every-call handler, run against the SMA engine as a transcript (JSON in, JSON out)."""

from __future__ import annotations

import json

import pytest

from gatewayd.handlers import recorder
from gatewayd.sma import actions as A
from gatewayd.sma import effects as E
from tests.unit.sma_transcript import A_ID, Call, only


def handle(call: Call, inv: E.InvokeHandler) -> list[E.Effect]:
    response = json.loads(json.dumps(recorder.handler(json.loads(json.dumps(inv.payload)), None)))
    return call.reply(inv, response)


def test_answers_and_records_at_once_until_the_caller_hangs_up() -> None:
    call = Call()
    out = handle(call, call.start())
    assert out[0] == E.AnswerLeg(A_ID)
    rec = only(out, E.StartAction)
    assert isinstance(rec.action, A.RecordAudio)
    assert (rec.action.bucket, rec.action.object_key("x.wav"), rec.action.max_duration_ms) == (
        "gatewayd-recordings", "calls/x.wav", 3_600_000)
    assert rec.action.silence_duration_ms is None and rec.action.terminators == ("#",)
    assert call.hang_up(dt=30) == [E.StopAction(rec.action_id, A_ID, E.StopReason.HANGUP)]
    inv = only(call.succeed(rec, {"RecordingDestination": {"Type": "S3", "BucketName": "gatewayd-recordings",
                                                           "Key": "calls/a.wav"}}), E.InvokeHandler)
    out = handle(call, inv)
    assert not [e for e in out if isinstance(e, E.StartAction | E.HangupLeg)]  # the caller is gone already


def test_maximum_length_reached_hangs_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECORDER_MAX_SECONDS", "60")
    monkeypatch.setenv("RECORDER_BUCKET", "line-log")
    monkeypatch.setenv("RECORDER_TERMINATORS", "*0")
    call = Call()
    rec = only(handle(call, call.start()), E.StartAction)
    assert isinstance(rec.action, A.RecordAudio)
    assert (rec.action.bucket, rec.action.max_duration_ms, rec.action.terminators) == ("line-log", 60_000, ("*", "0"))
    inv = only(call.succeed(rec, {"RecordingDestination": {"Type": "S3", "BucketName": "line-log",
                                                           "Key": "calls/b.wav"}}, dt=60), E.InvokeHandler)
    assert handle(call, inv)[0] == E.HangupLeg(A_ID, 0)


def test_failed_recording_hangs_up() -> None:
    call = Call()
    rec = only(handle(call, call.start()), E.StartAction)
    inv = only(call.fail(rec, "InvalidActionParameter", A.MSG_UPLOAD_FAILED, dt=5), E.InvokeHandler)
    assert handle(call, inv)[0] == E.HangupLeg(A_ID, 0)
