"""Forward a call with noise suppression on both legs, written like an Amazon Chime SMA Lambda.

NEW_INBOUND_CALL: CallAndBridge to ``BRIDGE_TARGET`` (a number or SIP URI), with ringback. Once both
legs are connected, VoiceFocus is enabled on LEG-A and LEG-B and the conversation is recorded
(StartCallRecording BOTH on LEG-A: left what the caller said, right what they heard). When one leg
hangs up, the other is hung up. If the far end does not answer, the caller hears a message.

Environment variables (defaults in brackets): ``BRIDGE_TARGET`` [+15550100002], ``BRIDGE_TIMEOUT``
[30], ``BRIDGE_RINGBACK`` [gatewayd-prompts/ringback.wav — bucket/key; empty for none],
``BRIDGE_RECORDINGS`` [gatewayd-recordings/bridged].
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None else value


def _response(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"SchemaVersion": "1.0", "Actions": list(actions)}


def _leg(event: dict[str, Any], tag: str) -> dict[str, Any]:
    for p in event.get("CallDetails", {}).get("Participants") or []:
        if p.get("ParticipantTag") == tag:
            found: dict[str, Any] = p
            return found
    return {}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = event.get("InvocationEventType")
    data = event.get("ActionData") or {}
    a, b = _leg(event, "LEG-A"), _leg(event, "LEG-B")
    if kind == "NEW_INBOUND_CALL":
        params: dict[str, Any] = {
            "CallTimeoutSeconds": int(_env("BRIDGE_TIMEOUT", "30")),
            "CallerIdNumber": a.get("From", ""),
            "Endpoints": [{"BridgeEndpointType": "PSTN", "Uri": _env("BRIDGE_TARGET", "+15550100002")}]}
        ringback = _env("BRIDGE_RINGBACK", "gatewayd-prompts/ringback.wav")
        if ringback:
            bucket, _, key = ringback.partition("/")
            params["RingbackTone"] = {"Type": "S3", "BucketName": bucket, "Key": key}
        return _response({"Type": "CallAndBridge", "Parameters": params})
    if kind == "ACTION_SUCCESSFUL" and data.get("Type") == "CallAndBridge":
        return _response(
            {"Type": "VoiceFocus", "Parameters": {"Enable": True, "CallId": a["CallId"]}},
            {"Type": "VoiceFocus", "Parameters": {"Enable": True, "CallId": b["CallId"]}},
            {"Type": "StartCallRecording", "Parameters": {
                "CallId": a["CallId"], "Track": "BOTH",
                "Destination": {"Type": "S3", "Location": _env("BRIDGE_RECORDINGS", "gatewayd-recordings/bridged")}}})
    if kind == "ACTION_FAILED" and data.get("Type") == "CallAndBridge":
        log.info("far end did not answer: %s", data.get("ErrorType"))
        return _response(
            {"Type": "Speak", "Parameters": {"CallId": a.get("CallId"), "Text": "Sorry, nobody is available."}},
            {"Type": "Hangup", "Parameters": {"CallId": a.get("CallId"), "SipResponseCode": "0"}})
    if kind == "HANGUP":
        still = [p for p in (a, b) if p.get("Status") == "Connected"]
        return _response(*({"Type": "Hangup", "Parameters": {"CallId": p["CallId"], "SipResponseCode": "0"}}
                           for p in still))
    if kind == "ACTION_FAILED":
        log.warning("%s failed: %s: %s", data.get("Type"), data.get("ErrorType"), data.get("ErrorMessage"))
    return _response()
