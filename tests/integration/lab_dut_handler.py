"""The DUT's application in tests/integration/test_hil_lab_sip.py: a small IVR written like a Chime SMA Lambda.

NEW_INBOUND_CALL: play the prompt (``LAB_PROMPT_BUCKET``/``LAB_PROMPT_KEY``), arm ReceiveDigits (one
DIGITS_RECEIVED per key 0-9 or ``*``) and record (``#`` ends it) into ``LAB_RECORDINGS_BUCKET`` under
``lab/``. When the recording is stored and the caller is still there: hang up. Every event it gets is
appended as one JSON line to ``LAB_TRANSCRIPT``: the handler transcript the test asserts on.
"""

from __future__ import annotations

import json
import os
from typing import Any


def _response(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"SchemaVersion": "1.0", "Actions": list(actions)}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with open(os.environ["LAB_TRANSCRIPT"], "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")
    kind = event.get("InvocationEventType")
    caller = ((event.get("CallDetails") or {}).get("Participants") or [{}])[0]
    call_id = str(caller.get("CallId", ""))
    data = event.get("ActionData") or {}
    if kind == "NEW_INBOUND_CALL":
        return _response(
            {"Type": "PlayAudio", "Parameters": {"CallId": call_id, "AudioSource": {
                "Type": "S3", "BucketName": os.environ["LAB_PROMPT_BUCKET"], "Key": os.environ["LAB_PROMPT_KEY"]}}},
            {"Type": "ReceiveDigits", "Parameters": {"CallId": call_id, "InputDigitsRegex": "^[0-9*]$",
                                                     "InBetweenDigitsDurationInMilliseconds": 1500,
                                                     "FlushDigitsDurationInMilliseconds": 10000}},
            {"Type": "RecordAudio", "Parameters": {
                "CallId": call_id, "DurationInSeconds": "60", "RecordingTerminators": ["#"],
                "RecordingDestination": {"Type": "S3", "BucketName": os.environ["LAB_RECORDINGS_BUCKET"],
                                         "Prefix": "lab"}}})
    if kind == "ACTION_SUCCESSFUL" and data.get("Type") == "RecordAudio" and caller.get("Status") == "Connected":
        return _response({"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}})
    return _response()
