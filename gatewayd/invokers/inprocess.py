"""``python:package.module:function`` — a handler run in-process, kept warm like a Lambda container.

The module is imported once (on the first invocation, on a worker thread, or by :meth:`load`) and kept:
module globals persist between invocations, as in a warm Lambda container. Each invocation gets its
own copy of the event (a JSON round trip, so the handler cannot alias the engine's data) and a
Lambda-like ``context``. What it returns goes through JSON as Lambda's runtime does; an exception
becomes a FUNCTION_ERROR result (Lambda's ``Unhandled`` function error) and never reaches the daemon.

Environment variables from the config are put in ``os.environ`` before the module is imported. The
environment is process-wide: two in-process handlers may not give the same variable different values.
When the last invoker holding a variable is closed (a reload, the end of a simulation) the variable
goes back to what it was before.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gatewayd.invokers.base import InvocationError, InvokeError, InvokeOk, Invoker, InvokeResult

log = logging.getLogger(__name__)

_SPEC_RE = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")
_ENV_LOCK = threading.Lock()

@dataclass
class _Held:
    """One environment variable set for in-process handlers: its value, holders, and what it replaced."""

    value: str
    owner: str
    previous: str | None
    holders: int = 0


_ENV_HELD: dict[str, _Held] = {}


class HandlerSpecError(ValueError):
    """The handler string is not ``[python:]package.module:function``, or its environment conflicts."""


def parse_handler_spec(spec: str) -> tuple[str, str]:
    """``"python:pkg.mod:func"`` or ``"pkg.mod:func"`` → ``("pkg.mod", "func")``."""
    text = spec.strip()
    m = _SPEC_RE.match(text.removeprefix("python:"))
    if not m:
        raise HandlerSpecError(f"{spec!r} is not package.module:function")
    return m.group(1), m.group(2)


class LambdaContext:
    """The parts of Lambda's Python ``context`` object that handlers use."""

    def __init__(self, *, function_name: str, aws_request_id: str, deadline: float, region: str,
                 account_id: str, memory_limit_in_mb: int = 128) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.aws_request_id = aws_request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"gatewayd/[$LATEST]{aws_request_id.replace('-', '')}"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _register_environment(environment: Mapping[str, str], owner: str) -> None:
    with _ENV_LOCK:
        for key, value in environment.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise HandlerSpecError(f"{owner}: environment variables must be strings ({key!r})")
            held = _ENV_HELD.get(key)
            if held is not None and held.value != value and held.owner != owner:
                raise HandlerSpecError(
                    f"{owner}: environment variable {key} is already {held.value!r} for {held.owner}")
        for key, value in environment.items():
            held = _ENV_HELD.setdefault(key, _Held(value, owner, os.environ.get(key)))
            held.value, held.owner = value, owner
            held.holders += 1
            os.environ[key] = value


def _release_environment(environment: Mapping[str, str]) -> None:
    with _ENV_LOCK:
        for key in environment:
            held = _ENV_HELD.get(key)
            if held is None:
                continue
            held.holders -= 1
            if held.holders <= 0:
                del _ENV_HELD[key]
                if held.previous is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = held.previous


class PythonInvoker(Invoker):
    """Runs ``package.module:function(event, context)`` on worker threads."""

    kind = "python"

    def __init__(self, spec: str, *, environment: Mapping[str, str] | None = None, function_name: str | None = None,
                 region: str = "us-east-1", account_id: str = "000000000000", workers: int = 4) -> None:
        self.module_name, self.function = parse_handler_spec(spec)
        super().__init__(f"python:{self.module_name}:{self.function}", workers=workers)
        self.function_name = function_name or self.module_name.rsplit(".", 1)[-1]
        self.region = region
        self.account_id = account_id
        self._environment = dict(environment or {})
        _register_environment(self._environment, self.target)
        self._handler: Callable[[Any, Any], Any] | None = None
        self._load_lock = threading.Lock()
        self._released = False

    def close(self) -> None:
        super().close()
        if not self._released:
            self._released = True
            _release_environment(self._environment)

    def load(self) -> Callable[[Any, Any], Any]:
        """Import the module (once) and return the handler; raises AttributeError (no such callable)
        or whatever the import raises (ImportError, SyntaxError, the module's own exceptions)."""
        with self._load_lock:
            if self._handler is None:
                module = importlib.import_module(self.module_name)
                handler = getattr(module, self.function)
                if not callable(handler):
                    raise AttributeError(f"{self.target} is not callable")
                self._handler = handler
                log.info("loaded handler %s", self.target)
            return self._handler

    def _call(self, body: bytes, deadline: float, request_id: str) -> InvokeResult:
        start = time.monotonic()
        try:
            handler = self.load()
        except AttributeError as exc:
            return self._error("Runtime.HandlerNotFound", f"Handler '{self.function}' missing on module "
                                                          f"'{self.module_name}': {exc}", start, request_id)
        except Exception as exc:
            log.exception("%s: cannot load the handler", self.target)
            return self._error("Runtime.ImportModuleError", f"Unable to import module '{self.module_name}': {exc}",
                               start, request_id, exc)
        event = json.loads(body)
        context = LambdaContext(function_name=self.function_name, aws_request_id=request_id, deadline=deadline,
                                region=self.region, account_id=self.account_id)
        try:
            result = handler(event, context)
        except SystemExit as exc:
            return self._error("Runtime.ExitError", f"The handler called exit({exc.code})", start, request_id)
        except Exception as exc:
            log.warning("%s raised %s: %s", self.target, type(exc).__name__, exc, exc_info=True)
            return self._error(type(exc).__name__, str(exc), start, request_id, exc)
        try:
            response = json.loads(json.dumps(result, allow_nan=False))
        except (TypeError, ValueError) as exc:
            return self._error("Runtime.MarshalError", f"Unable to marshal response: {exc}", start, request_id)
        return InvokeOk(response, time.monotonic() - start, request_id)

    def _error(self, error_type: str, message: str, start: float, request_id: str,
               exc: BaseException | None = None) -> InvokeError:
        trace = tuple(line.rstrip("\n") for line in traceback.format_tb(exc.__traceback__)) if exc else ()
        return InvokeError(InvocationError.FUNCTION_ERROR, message, error_type, time.monotonic() - start,
                           request_id, trace)
