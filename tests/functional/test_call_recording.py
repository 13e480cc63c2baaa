"""Start/Pause/Resume/StopCallRecording through the runtime: stereo file, marker on pause, key shape."""

from __future__ import annotations

import re
import wave
from pathlib import Path
from typing import Any

import numpy as np

from drivers.virtual import Caller, Digits
from media.tones import tone
from tests.functional.test_call_flow import run


def on_demand(event: dict[str, Any], context: Any) -> dict[str, Any]:
    t = event["InvocationEventType"]
    leg = event["CallDetails"]["Participants"][0]["CallId"]
    if t == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "StartCallRecording", "Parameters": {
                "CallId": leg, "Track": "BOTH", "Destination": {"Type": "S3", "Location": "recordings/calls"}}}]}
    if t == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "StartCallRecording":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "ReceiveDigits", "Parameters": {"CallId": leg, "InputDigitsRegex": "^[56]$",
                                                     "InBetweenDigitsDurationInMilliseconds": 200,
                                                     "FlushDigitsDurationInMilliseconds": 1000}},
            {"Type": "PlayAudio", "Parameters": {"CallId": leg, "AudioSource": {
                "Type": "S3", "BucketName": "prompts", "Key": "beep.wav"}, "Repeat": 5}}]}
    if t == "DIGITS_RECEIVED":
        kind = {"5": "PauseCallRecording", "6": "ResumeCallRecording"}[event["ActionData"]["ReceivedDigits"]]
        return {"SchemaVersion": "1.0", "Actions": [{"Type": kind, "Parameters": {"CallId": leg}}]}
    return {"SchemaVersion": "1.0", "Actions": []}


def read_stereo(data: bytes, tmp: Path) -> tuple[np.ndarray, np.ndarray]:
    p = tmp / "rec.wav"
    p.write_bytes(data)
    with wave.open(str(p)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    return x[:, 0].astype(float), x[:, 1].astype(float)


def frame_levels(x: np.ndarray) -> np.ndarray:
    n = len(x) // 160 * 160
    return np.abs(x[:n]).reshape(-1, 160).mean(axis=1)


def test_stereo_call_recording_with_pause_and_resume(tmp_path: Path) -> None:
    talk = tone([300.0], -15.0, 8000 * 9)  # the caller talks from 0.5 s to 9.5 s
    caller = Caller(audio=[(0.5, talk)], digits=[Digits(3.0, "5", "rfc4733"), Digits(5.0, "6", "rfc4733")],
                    hangup_at=8.0)
    res, objects = run(caller, tmp_path, handler="python:tests.functional.test_call_recording:on_demand")
    kinds = [(ex.event["InvocationEventType"], (ex.event.get("ActionData") or {}).get("Type"))
             for ex in res.transcript]
    assert ("DIGITS_RECEIVED", "ReceiveDigits") in kinds and ("ACTION_SUCCESSFUL", "ResumeCallRecording") in kinds
    assert ("ACTION_SUCCESSFUL", "PauseCallRecording") in kinds
    dests = [ex.event["ActionData"]["CallRecordingDestination"] for ex in res.transcript
             if "CallRecordingDestination" in (ex.event.get("ActionData") or {})]
    txid = res.transcript[0].event["CallDetails"]["TransactionId"]
    callid = res.transcript[0].event["CallDetails"]["Participants"][0]["CallId"]
    # the recording key has Chime's StartCallRecording shape
    keys = [str(p.relative_to(tmp_path / "buckets" / "recordings")) for p in
            (tmp_path / "buckets" / "recordings").rglob("*.wav")]
    assert len(keys) == 1
    assert re.fullmatch(rf"calls/\d{{4}}/\d\d/\d\d/\d{{4}}(-\d\d){{5}}-\d{{3}}_{txid}_{callid}\.wav", keys[0])
    assert dests == [{"Type": "S3", "Location": f"recordings/{keys[0]}"}]
    left, right = read_stereo(objects.store.backend_for("recordings").get_object("recordings", keys[0]), tmp_path)
    assert abs(len(left) / 8000 - 8.0) < 0.1  # from the answer until the caller hung up at 8 s
    ll, rl = frame_levels(left), frame_levels(right)
    # left = the caller (talking from 0.5 s), right = what the caller heard (the beep prompt, from 0 s)
    assert ll[5:20].max() < 10 and ll[30:140].min() > 500
    assert rl[:8].min() > 1000
    # paused between the '5' at 3 s and the '6' at 5 s: a 200 ms marker tone, then silence on both channels
    pause = int(3.0 * 50) + 2  # digit handling takes about a frame or two of media time
    assert ll[pause:pause + 8].min() > 200 and rl[pause:pause + 8].min() > 200  # marker (both channels)
    assert ll[pause + 15:int(5.0 * 50)].max() < 10 and rl[pause + 15:int(5.0 * 50)].max() < 10
    assert ll[int(5.0 * 50) + 5:int(7.5 * 50)].min() > 500  # recording again after the resume
    meta = objects.metadata("recordings", keys[0])
    assert meta["transaction-id"] == txid and meta["call-id"] == callid
    assert meta["recording-audio-file-format"] == "wav" and abs(float(meta["recording-duration"]) - 8.0) < 0.1
