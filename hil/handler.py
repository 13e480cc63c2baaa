"""The handler the device under test runs in HIL scenarios: scripted, and it keeps a transcript.

gatewayd loads it in-process (``python:hil.handler:handler``). Two environment variables (set in the
application's ``environment``) point at files the scenario owns:

* ``HIL_SCRIPT``: a JSON object read afresh on every invocation, so that one running daemon serves
  scenario after scenario. Keys are ``"<InvocationEventType>:<ActionData.Type>"`` (e.g.
  ``"ACTION_SUCCESSFUL:PlayAudioAndGetDigits"``) or just ``"<InvocationEventType>"``; the more
  specific key wins. Each value is the list of actions to return; the string ``"{CallId}"`` anywhere in
  them is replaced by the call's CallId. No matching key: no actions.
* ``HIL_TRANSCRIPT``: a JSONL file; every invocation appends ``{"t", "event", "response"}`` (``t``:
  ``time.time()`` when the event arrived).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

_lock = threading.Lock()


def _call_id(event: dict[str, Any]) -> str:
    participants = (event.get("CallDetails") or {}).get("Participants") or [{}]
    return str(participants[0].get("CallId", ""))


def _fill(value: Any, call_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("{CallId}", call_id)
    if isinstance(value, list):
        return [_fill(v, call_id) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, call_id) for k, v in value.items()}
    return value


def actions_for(script: dict[str, Any], event: dict[str, Any]) -> list[Any]:
    kind = str(event.get("InvocationEventType", ""))
    action = str((event.get("ActionData") or {}).get("Type", ""))
    chosen = script.get(f"{kind}:{action}", script.get(kind, []))
    filled = _fill(chosen, _call_id(event))
    return filled if isinstance(filled, list) else []


def append_transcript(path: str, t: float, event: dict[str, Any], response: dict[str, Any]) -> None:
    """One invocation as a line of the transcript :class:`hil.dut_view.DutView` reads."""
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"t": t, "event": event, "response": response}) + "\n")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    t = time.time()
    script_path = os.environ.get("HIL_SCRIPT", "")
    script: dict[str, Any] = {}
    if script_path and Path(script_path).exists():
        script = json.loads(Path(script_path).read_text() or "{}")
    response: dict[str, Any] = {"SchemaVersion": "1.0", "Actions": actions_for(script, event)}
    transcript = os.environ.get("HIL_TRANSCRIPT", "")
    if transcript:
        append_transcript(transcript, t, event, response)
    return response
