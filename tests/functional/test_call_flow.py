"""Whole calls through the runtime on the virtual exchange: engine, media worker, executors, store."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from drivers.virtual import Caller, Digits
from gatewayd.config import ApplicationConfig
from gatewayd.invokers import make_invoker
from gatewayd.runtime.prompts import PromptLoader
from gatewayd.simulate import Simulation, SimulationResult
from media.tones import tone
from media.wav import decode_wav, encode_wav
from tests.functional.doubles import MemoryStore

BEEP = tone([1000.0], -10.0, 1600)  # 200 ms


def voicemail(event: dict[str, Any], context: Any) -> dict[str, Any]:
    t = event["InvocationEventType"]
    leg = event["CallDetails"]["Participants"][0]["CallId"]
    if t == "NEW_INBOUND_CALL":
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "PlayAudio", "Parameters": {"AudioSource": {"Type": "S3", "BucketName": "prompts",
                                                                 "Key": "beep.wav"}}},
            {"Type": "RecordAudio", "Parameters": {
                "DurationInSeconds": "30", "SilenceDurationInSeconds": 3, "RecordingTerminators": ["#"],
                "RecordingDestination": {"Type": "S3", "BucketName": "recordings", "Prefix": "vm/"}}}]}
    if t == "ACTION_SUCCESSFUL" and event["ActionData"]["Type"] == "RecordAudio":
        dest = event["ActionData"]["RecordingDestination"]
        return {"SchemaVersion": "1.0", "Actions": [
            {"Type": "PlayAudio", "Parameters": {"AudioSource": {"Type": "S3", "BucketName": dest["BucketName"],
                                                                 "Key": dest["Key"]}}},
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0", "CallId": leg}}]}
    return {"SchemaVersion": "1.0", "Actions": []}


def run(caller: Caller, handler: str = "python:tests.functional.test_call_flow:voicemail"
        ) -> tuple[SimulationResult, MemoryStore]:
    store = MemoryStore()
    store.objects[("prompts", "beep.wav")] = encode_wav(BEEP)
    app = ApplicationConfig(name="vm", handler=handler)
    with make_invoker(handler) as invoker:
        sim = Simulation(app, invoker, store, PromptLoader(store.fetch), max_seconds=120)
        return asyncio.run(sim.run(caller)), store


def test_voicemail_records_until_the_terminator_and_plays_it_back() -> None:
    speech = tone([440.0, 660.0], -15.0, 8000 * 2)  # 2 s "speech" starting 0.5 s after answer
    caller = Caller(audio=[(0.5, speech)], digits=[Digits(3.0, "#", "rfc4733")], hangup_at=20.0)
    res, store = run(caller)
    types = [ex.event["InvocationEventType"] for ex in res.transcript]
    assert types == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    rec_event = res.transcript[1].event
    assert rec_event["ActionData"]["Type"] == "RecordAudio"
    assert rec_event["ActionData"]["RecordingTerminatorUsed"] == "#"
    key = rec_event["ActionData"]["RecordingDestination"]["Key"]
    assert key.startswith("vm/") and key.endswith(".wav")
    audio = decode_wav(store.objects[("recordings", key)])
    # recording started after the 200 ms beep; '#' pressed at 3.0 s → about 2.8 s kept
    assert abs(len(audio) - int(2.8 * 8000)) <= 160
    # the speech is in it, where the caller put it
    level = np.abs(audio.astype(float)).reshape(-1, 160).mean(axis=1)
    assert level[:12].max() < 10 and level[20:100].min() > 500
    assert store.metadata[("recordings", key)]["transaction-id"] == rec_event["CallDetails"]["TransactionId"]
    # the caller heard the beep, then its own recording played back
    heard = res.exchange.legs["virtual-in-1"].heard_audio()  # type: ignore[union-attr]
    assert np.abs(heard[:1600].astype(float)).mean() > 1000
    hangup = res.transcript[2].event
    assert hangup["ActionData"]["Parameters"]["SipResponseCode"] == 0
    assert res.end_reasons == ["completed"]


def test_caller_hanging_up_mid_recording_still_gets_the_recording_then_hangup() -> None:
    speech = tone([500.0], -15.0, 8000 * 5)
    caller = Caller(audio=[(0.3, speech)], hangup_at=4.0)
    res, store = run(caller)
    types = [ex.event["InvocationEventType"] for ex in res.transcript]
    assert types == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    ad = res.transcript[1].event["ActionData"]
    assert "RecordingTerminatorUsed" not in ad
    audio = decode_wav(store.objects[("recordings", ad["RecordingDestination"]["Key"])])
    assert abs(len(audio) - int(3.8 * 8000)) <= 160
