"""Noise suppression on demand, written like an Amazon Chime SIP-media-application Lambda.

The caller is asked to press 1 to turn VoiceFocus on and 0 to turn it off; what they say is recorded
(StartCallRecording, the INCOMING track) so the effect can be heard afterwards. Environment variables
(defaults in brackets): ``VOICEFOCUS_RECORDINGS`` [gatewayd-recordings/voicefocus] — the recording's
``Destination.Location``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)

PROMPT = "Press 1 to turn noise reduction on, and 0 to turn it off."


def _response(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"SchemaVersion": "1.0", "Actions": list(actions)}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = event.get("InvocationEventType")
    legs = event.get("CallDetails", {}).get("Participants") or [{}]
    call_id = legs[0].get("CallId", "")
    data = event.get("ActionData") or {}
    if kind == "NEW_INBOUND_CALL":
        location = os.environ.get("VOICEFOCUS_RECORDINGS") or "gatewayd-recordings/voicefocus"
        return _response(
            {"Type": "StartCallRecording", "Parameters": {"CallId": call_id, "Track": "INCOMING",
                                                          "Destination": {"Type": "S3", "Location": location}}},
            {"Type": "ReceiveDigits", "Parameters": {"CallId": call_id, "InputDigitsRegex": "^[01]$",
                                                     "InBetweenDigitsDurationInMilliseconds": 300,
                                                     "FlushDigitsDurationInMilliseconds": 2000}},
            {"Type": "Speak", "Parameters": {"CallId": call_id, "Text": PROMPT, "VoiceId": "Joanna"}})
    if kind == "DIGITS_RECEIVED":
        enable = data.get("ReceivedDigits") == "1"
        log.info("VoiceFocus %s", "on" if enable else "off")
        return _response({"Type": "VoiceFocus", "Parameters": {"CallId": call_id, "Enable": enable}})
    if kind == "ACTION_FAILED":
        log.warning("%s failed: %s: %s", data.get("Type"), data.get("ErrorType"), data.get("ErrorMessage"))
    return _response()
