"""Handlers for the invoker tests (imported by the in-process invoker and lambda-host)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

CALLS = 0  # module state: survives between invocations in a warm "container"
_release = threading.Event()


def echo(event: Any, context: Any) -> dict[str, Any]:
    return {"SchemaVersion": "1.0", "Actions": [], "Echo": event}


def count(event: Any, context: Any) -> dict[str, Any]:
    global CALLS
    CALLS += 1
    return {"calls": CALLS}


def context_info(event: Any, context: Any) -> dict[str, Any]:
    return {"function_name": context.function_name, "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(), "arn": context.invoked_function_arn,
            "env": os.environ.get("FIXTURE_GREETING")}


def mutate(event: Any, context: Any) -> dict[str, Any]:
    event["CallDetails"] = "clobbered"
    return {"ok": True}


def boom(event: Any, context: Any) -> dict[str, Any]:
    raise ValueError("the handler broke")


def slow(event: Any, context: Any) -> dict[str, Any]:
    _release.wait(float(event.get("sleep", 5)))
    return {"slept": True}


def release() -> None:
    """Wake every `slow` handler now waiting (later ones wait again)."""
    _release.set()
    _release.clear()


def not_json(event: Any, context: Any) -> Any:
    return {"a set": {1, 2}}


def nan(event: Any, context: Any) -> Any:
    return {"x": float("nan")}


def leave(event: Any, context: Any) -> Any:
    sys.exit(3)


def returns_none(event: Any, context: Any) -> Any:
    return None


def timed(event: Any, context: Any) -> Any:
    return {"t": time.monotonic()}


not_callable = 42
