"""A voicemail box, written like an Amazon Chime SIP-media-application Lambda (``handler(event, context)``).

NEW_INBOUND_CALL: play the greeting and a beep, then record until the caller presses #, stays silent or
reaches the maximum length. When the recording is stored (ACTION_SUCCESSFUL of RecordAudio), play it
back to the caller and hang up; its place is kept in TransactionAttributes. A missing greeting or beep
is skipped (the message is still taken); any other failure ends the call politely.

Configured by environment variables (defaults in brackets):

* ``VOICEMAIL_PROMPTS_BUCKET`` [gatewayd-prompts], ``VOICEMAIL_GREETING_KEY`` [voicemail/greeting.wav],
  ``VOICEMAIL_BEEP_KEY`` [voicemail/beep.wav]: the prompts (WAV, any PCM rate);
* ``VOICEMAIL_BUCKET`` [gatewayd-recordings], ``VOICEMAIL_PREFIX`` [voicemail]: where messages go;
* ``VOICEMAIL_MAX_SECONDS`` [120], ``VOICEMAIL_SILENCE_SECONDS`` [5], ``VOICEMAIL_SILENCE_THRESHOLD`` [200].
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _response(*actions: dict[str, Any], attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"SchemaVersion": "1.0", "Actions": list(actions)}
    if attributes is not None:
        response["TransactionAttributes"] = attributes
    return response


def _play(call_id: str, bucket: str, key: str) -> dict[str, Any]:
    return {"Type": "PlayAudio",
            "Parameters": {"CallId": call_id, "AudioSource": {"Type": "S3", "BucketName": bucket, "Key": key}}}


def _greeting(call_id: str) -> dict[str, Any]:
    return _play(call_id, _env("VOICEMAIL_PROMPTS_BUCKET", "gatewayd-prompts"),
                 _env("VOICEMAIL_GREETING_KEY", "voicemail/greeting.wav"))


def _beep(call_id: str) -> dict[str, Any]:
    return _play(call_id, _env("VOICEMAIL_PROMPTS_BUCKET", "gatewayd-prompts"),
                 _env("VOICEMAIL_BEEP_KEY", "voicemail/beep.wav"))


def _record(call_id: str) -> dict[str, Any]:
    return {"Type": "RecordAudio",
            "Parameters": {"CallId": call_id,
                           "DurationInSeconds": _env("VOICEMAIL_MAX_SECONDS", "120"),
                           "SilenceDurationInSeconds": _env("VOICEMAIL_SILENCE_SECONDS", "5"),
                           "SilenceThreshold": _env("VOICEMAIL_SILENCE_THRESHOLD", "200"),
                           "RecordingTerminators": ["#"],
                           "RecordingDestination": {"Type": "S3",
                                                    "BucketName": _env("VOICEMAIL_BUCKET", "gatewayd-recordings"),
                                                    "Prefix": _env("VOICEMAIL_PREFIX", "voicemail")}}}


def _hangup(call_id: str) -> dict[str, Any]:
    return {"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}}


def _caller(event: dict[str, Any]) -> dict[str, Any]:
    participants = event.get("CallDetails", {}).get("Participants") or [{}]
    first: dict[str, Any] = participants[0]
    return first


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    kind = event.get("InvocationEventType")
    caller = _caller(event)
    call_id = str(caller.get("CallId", ""))
    data = event.get("ActionData") or {}
    action = data.get("Type")
    log.info("%s %s (Sequence %s)", kind, action or "", event.get("Sequence"))

    if kind == "NEW_INBOUND_CALL":
        return _response(_greeting(call_id), _beep(call_id), _record(call_id),
                         attributes={"Caller": caller.get("From", "")})

    if kind == "ACTION_SUCCESSFUL" and action == "RecordAudio":
        dest = data.get("RecordingDestination") or {}
        stored = {"RecordingBucket": dest.get("BucketName", ""), "RecordingKey": dest.get("Key", "")}
        log.info("message stored in %s/%s (terminator %s)", stored["RecordingBucket"], stored["RecordingKey"],
                 data.get("RecordingTerminatorUsed", "none"))
        if caller.get("Status") != "Connected":  # the caller hung up while recording: nobody to play it to
            return _response(attributes=stored)
        return _response(_play(call_id, stored["RecordingBucket"], stored["RecordingKey"]), _hangup(call_id),
                         attributes=stored)

    if kind == "ACTION_FAILED":
        log.warning("%s failed: %s: %s", action, data.get("ErrorType"), data.get("ErrorMessage"))
        if caller.get("Status") == "Disconnected":
            return _response()
        if action == "PlayAudio":
            key = (data.get("Parameters") or {}).get("AudioSource", {}).get("Key")
            if key == _greeting(call_id)["Parameters"]["AudioSource"]["Key"]:
                return _response(_beep(call_id), _record(call_id))  # no greeting: still take the message
            if key == _beep(call_id)["Parameters"]["AudioSource"]["Key"]:
                return _response(_record(call_id))
        return _response(_hangup(call_id))

    if kind == "INVALID_LAMBDA_RESPONSE":
        log.error("the gateway refused a response: %s: %s", event.get("ErrorType"), event.get("ErrorMessage"))
        return _response(_hangup(call_id))

    if kind == "HANGUP":
        attributes = event.get("CallDetails", {}).get("TransactionAttributes") or {}
        log.info("call ended; message %s", attributes.get("RecordingKey", "not recorded"))
    return _response()
