"""The DUT's application in tests/integration/test_hil_lab_sip.py: a small IVR written like a Chime SMA Lambda.

NEW_INBOUND_CALL: play the prompt (``LAB_PROMPT_BUCKET``/``LAB_PROMPT_KEY``), arm ReceiveDigits (one
DIGITS_RECEIVED per key 0-9 or ``*``) and record (``#`` ends it) into ``LAB_RECORDINGS_BUCKET`` under
``lab/``; with ``LAB_SILENCE_SECONDS`` set, that much silence also ends it. When the recording is stored
and the caller is still there: hang up. A call from ``LAB_SLOW_CALLER`` waits ``LAB_SLOW_SECONDS`` before
the first answer (the line rings meanwhile). A call from ``LAB_DIGITS_CALLER`` gets digits instead: "47"
with SendDigits, then "159" as tones in the prompt ``lab/dtmf.wav``, then a hang-up. Every invocation is
appended to ``LAB_TRANSCRIPT`` as :mod:`hil.handler` does on the Pi: the transcript the test asserts on.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hil.handler import append_transcript


def _response(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"SchemaVersion": "1.0", "Actions": list(actions)}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    t = time.time()
    response = _answer(event)
    append_transcript(os.environ["LAB_TRANSCRIPT"], t, event, response)
    return response


def _answer(event: dict[str, Any]) -> dict[str, Any]:
    kind = event.get("InvocationEventType")
    caller = ((event.get("CallDetails") or {}).get("Participants") or [{}])[0]
    call_id = str(caller.get("CallId", ""))
    data = event.get("ActionData") or {}
    if kind == "NEW_INBOUND_CALL" and caller.get("From") == os.environ.get("LAB_DIGITS_CALLER", "-"):
        return _response(  # the DUT sends digits: out of band (SendDigits), then in-band (a prompt of tones)
            {"Type": "SendDigits",
             "Parameters": {"CallId": call_id, "Digits": "47", "ToneDurationInMilliseconds": 120}},
            {"Type": "PlayAudio", "Parameters": {"CallId": call_id, "AudioSource": {
                "Type": "S3", "BucketName": os.environ["LAB_PROMPT_BUCKET"], "Key": "lab/dtmf.wav"}}},
            {"Type": "Pause", "Parameters": {"CallId": call_id, "DurationInMilliseconds": "500"}},
            {"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}})
    if kind == "NEW_INBOUND_CALL":
        if caller.get("From") and caller.get("From") == os.environ.get("LAB_SLOW_CALLER"):
            time.sleep(float(os.environ.get("LAB_SLOW_SECONDS", "5")))
        record: dict[str, Any] = {
            "CallId": call_id, "DurationInSeconds": "60", "RecordingTerminators": ["#"],
            "RecordingDestination": {"Type": "S3", "BucketName": os.environ["LAB_RECORDINGS_BUCKET"], "Prefix": "lab"}}
        if os.environ.get("LAB_SILENCE_SECONDS"):
            record["SilenceDurationInSeconds"] = os.environ["LAB_SILENCE_SECONDS"]
            record["SilenceThreshold"] = "200"
        return _response(
            {"Type": "PlayAudio", "Parameters": {"CallId": call_id, "AudioSource": {
                "Type": "S3", "BucketName": os.environ["LAB_PROMPT_BUCKET"], "Key": os.environ["LAB_PROMPT_KEY"]}}},
            {"Type": "ReceiveDigits", "Parameters": {"CallId": call_id, "InputDigitsRegex": "^[0-9*]$",
                                                     "InBetweenDigitsDurationInMilliseconds": 1500,
                                                     "FlushDigitsDurationInMilliseconds": 10000}},
            {"Type": "RecordAudio", "Parameters": record})
    if kind == "ACTION_SUCCESSFUL" and data.get("Type") == "RecordAudio" and caller.get("Status") == "Connected":
        return _response({"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}})
    return _response()
