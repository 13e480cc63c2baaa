"""Whole calls through the runtime on the virtual exchange: engine, media worker, executors, store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from drivers.virtual import Caller, Digits
from gatewayd.config import ApplicationConfig
from gatewayd.factories import fetcher
from gatewayd.invokers import make_invoker
from gatewayd.runtime.ops import TERMINATOR_GUARD
from gatewayd.runtime.prompts import PromptLoader
from gatewayd.simulate import Simulation, SimulationResult
from gatewayd.store import LocalDirectoryConfig, RecordingStore, StoreConfig
from media.tones import tone
from media.wav import decode_wav, encode_wav

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


class Objects:
    """Reads what the call left in the local-directory buckets."""

    def __init__(self, store: RecordingStore) -> None:
        self.store = store

    def audio(self, bucket: str, key: str) -> np.ndarray:
        return decode_wav(self.store.backend_for(bucket).get_object(bucket, key))

    def metadata(self, bucket: str, key: str) -> dict[str, str]:
        info = self.store.backend_for(bucket).head_object(bucket, key)
        assert info is not None
        return dict(info.metadata)


def run(caller: Caller, tmp: Path, handler: str = "python:tests.functional.test_call_flow:voicemail"
        ) -> tuple[SimulationResult, Objects]:
    (tmp / "buckets" / "prompts").mkdir(parents=True)
    (tmp / "buckets" / "prompts" / "beep.wav").write_bytes(encode_wav(BEEP))
    store = RecordingStore(StoreConfig(spool_dir=tmp / "spool", default_backend=LocalDirectoryConfig(tmp / "buckets")))
    store.start()
    app = ApplicationConfig(name="vm", handler=handler)
    try:
        with make_invoker(handler) as invoker:
            sim = Simulation(app, invoker, store, PromptLoader(fetcher(store)), max_seconds=120)
            return asyncio.run(sim.run(caller)), Objects(store)
    finally:
        store.stop(5.0)


def test_voicemail_records_until_the_terminator_and_plays_it_back(tmp_path: Path) -> None:
    speech = tone([440.0, 660.0], -15.0, 8000 * 2)  # 2 s "speech" starting 0.5 s after answer
    caller = Caller(audio=[(0.5, speech)], digits=[Digits(3.0, "#", "rfc4733")], hangup_at=20.0)
    res, store = run(caller, tmp_path)
    types = [ex.event["InvocationEventType"] for ex in res.transcript]
    assert types == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    rec_event = res.transcript[1].event
    assert rec_event["ActionData"]["Type"] == "RecordAudio"
    assert rec_event["ActionData"]["RecordingTerminatorUsed"] == "#"
    key = rec_event["ActionData"]["RecordingDestination"]["Key"]
    assert key.startswith("vm/") and key.endswith(".wav")
    audio = store.audio("recordings", key)
    # recording starts after the 200 ms beep (within a frame); '#' pressed at 3.0 s is cut with its guard
    assert 2.8 * 8000 - TERMINATOR_GUARD - 160 <= len(audio) <= 2.8 * 8000 - TERMINATOR_GUARD
    # the speech is in it, where the caller put it
    level = np.abs(audio[: len(audio) // 160 * 160].astype(float)).reshape(-1, 160).mean(axis=1)
    assert level[:12].max() < 10 and level[20:100].min() > 500
    meta = store.metadata("recordings", key)
    assert meta["transaction-id"] == rec_event["CallDetails"]["TransactionId"]
    assert meta["call-id"] == rec_event["CallDetails"]["Participants"][0]["CallId"]
    # the caller heard the beep, then its own recording played back
    heard = res.exchange.legs["virtual-in-1"].heard_audio()  # type: ignore[union-attr]
    assert np.abs(heard[:1600].astype(float)).mean() > 1000
    hangup = res.transcript[2].event
    assert hangup["ActionData"]["Parameters"]["SipResponseCode"] == 0
    assert res.end_reasons == ["completed"]


def test_caller_hanging_up_mid_recording_still_gets_the_recording_then_hangup(tmp_path: Path) -> None:
    speech = tone([500.0], -15.0, 8000 * 5)
    caller = Caller(audio=[(0.3, speech)], hangup_at=4.0)
    res, store = run(caller, tmp_path)
    types = [ex.event["InvocationEventType"] for ex in res.transcript]
    assert types == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    ad = res.transcript[1].event["ActionData"]
    assert "RecordingTerminatorUsed" not in ad
    audio = store.audio("recordings", ad["RecordingDestination"]["Key"])
    assert abs(len(audio) - int(3.8 * 8000)) <= 160
