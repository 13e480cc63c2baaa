"""Record every call, written like an Amazon Chime SIP-media-application Lambda (``handler(event, context)``).

NEW_INBOUND_CALL: answer and record at once (no prompt) until the caller hangs up or the maximum length
is reached; then hang up. For call logging, line tests and ``gatewayd bench sip --target daemon``.

Configured by environment variables (defaults in brackets): ``RECORDER_BUCKET`` [gatewayd-recordings],
``RECORDER_PREFIX`` [calls], ``RECORDER_MAX_SECONDS`` [3600], ``RECORDER_TERMINATORS`` [#] (the keys
that end a recording early; RecordAudio requires at least one).
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _response(*actions: dict[str, Any]) -> dict[str, Any]:
    return {"SchemaVersion": "1.0", "Actions": list(actions)}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = event.get("InvocationEventType")
    participants = (event.get("CallDetails") or {}).get("Participants") or [{}]
    caller: dict[str, Any] = participants[0]
    call_id = str(caller.get("CallId", ""))
    data = event.get("ActionData") or {}
    if kind == "NEW_INBOUND_CALL":
        return _response({"Type": "RecordAudio", "Parameters": {
            "CallId": call_id, "DurationInSeconds": _env("RECORDER_MAX_SECONDS", "3600"),
            "RecordingTerminators": list(_env("RECORDER_TERMINATORS", "#")),
            "RecordingDestination": {"Type": "S3", "BucketName": _env("RECORDER_BUCKET", "gatewayd-recordings"),
                                     "Prefix": _env("RECORDER_PREFIX", "calls")}}})
    if kind in ("ACTION_SUCCESSFUL", "ACTION_FAILED") and data.get("Type") == "RecordAudio":
        dest = data.get("RecordingDestination") or {}
        if kind == "ACTION_SUCCESSFUL":
            log.info("call from %s stored in %s/%s", caller.get("From", "?"), dest.get("BucketName"), dest.get("Key"))
        else:
            log.warning("recording failed: %s: %s", data.get("ErrorType"), data.get("ErrorMessage"))
        if caller.get("Status") == "Connected":
            return _response({"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}})
    return _response()
