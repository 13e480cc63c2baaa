"""A handler wrapper that leaves a transcript outside the daemon: for end-to-end tests of a daemon subprocess.

``python:tests.transcript_handler:voicemail`` runs the bundled voicemail handler and appends one JSON line
per invocation — ``{"event": ..., "response": ...}`` — to the file named by ``$GATEWAYD_TRANSCRIPT``
(set it in the application's ``environment``). The line is written before the response goes back, so
the file holds every invocation the daemon made, in order.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from gatewayd.handlers import voicemail as _voicemail

_LOCK = threading.Lock()


def _record(event: dict[str, Any], response: dict[str, Any]) -> None:
    line = json.dumps({"event": event, "response": response}, sort_keys=True)
    with _LOCK, open(os.environ["GATEWAYD_TRANSCRIPT"], "a", encoding="utf-8") as f:
        f.write(line + "\n")


def voicemail(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response = _voicemail.handler(event, context)
    _record(event, response)
    return response


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The invocations recorded in ``path``, in order."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
