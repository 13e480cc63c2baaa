"""``http(s)://host:port/...`` — a handler behind the Lambda Invoke API, over plain HTTP (no signing).

``POST /2015-03-31/functions/NAME/invocations`` with the event as the body, as ``sam local
start-lambda``, ``gatewayd lambda-host`` or any Lambda emulator serve it. The target URL is either that
full path, or ``http://host:port/NAME`` (shorthand for it). Connections are kept alive, one per worker
thread. A function error is HTTP 200 with ``X-Amz-Function-Error`` and an ``errorMessage`` /
``errorType`` body; any other status is a TRANSPORT error.

For a real AWS Lambda (SigV4), use an ``arn:`` target (boto3).
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
import urllib.parse
from typing import Any

from gatewayd.invokers.base import InvocationError, InvokeError, InvokeOk, Invoker, InvokeResult, parse_json_strict

log = logging.getLogger(__name__)

_INVOKE_PATH_RE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
_NAME_RE = re.compile(r"^/([A-Za-z0-9_:.-]+)/?$")


def invoke_path(url: str) -> tuple[urllib.parse.SplitResult, str]:
    """The parsed URL and the Invoke API path it names; ValueError when it names none."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r}: not an http(s)://host[:port]/... URL")
    path = parts.path or "/"
    if _INVOKE_PATH_RE.match(path):
        return parts, path + (f"?{parts.query}" if parts.query else "")
    m = _NAME_RE.match(path)
    if not m:
        raise ValueError(f"{url!r}: the path must be /2015-03-31/functions/NAME/invocations or /NAME")
    name = urllib.parse.quote(m.group(1), safe=":")
    return parts, f"/2015-03-31/functions/{name}/invocations"


class HttpInvoker(Invoker):
    kind = "http"

    def __init__(self, url: str, *, workers: int = 4) -> None:
        self._parts, self.path = invoke_path(url)
        super().__init__(url, workers=workers)
        self._local = threading.local()

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            return conn, True
        host, port = self._parts.hostname or "", self._parts.port
        if self._parts.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self._local.conn = conn
        return conn, False

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def _call(self, body: bytes, deadline: float, request_id: str) -> InvokeResult:
        start = time.monotonic()
        headers = {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"}
        for attempt in (1, 2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return InvokeError(InvocationError.TIMEOUT, "deadline passed", duration_s=time.monotonic() - start,
                                   request_id=request_id)
            conn, reused = self._connection(remaining)
            try:
                conn.request("POST", self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except TimeoutError:
                self._drop_connection()
                return InvokeError(InvocationError.TIMEOUT, f"no response from {self.target}",
                                   duration_s=time.monotonic() - start, request_id=request_id)
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                if reused and attempt == 1:  # the server closed an idle keep-alive connection: reconnect once
                    log.debug("%s: stale connection (%s); reconnecting", self.target, exc)
                    continue
                return InvokeError(InvocationError.TRANSPORT, f"{type(exc).__name__}: {exc}",
                                   duration_s=time.monotonic() - start, request_id=request_id)
            if resp.getheader("Connection", "").lower() == "close":
                self._drop_connection()
            return self._result(resp, data, start, request_id)
        raise AssertionError("unreachable")

    def _result(self, resp: http.client.HTTPResponse, data: bytes, start: float, request_id: str) -> InvokeResult:
        duration = time.monotonic() - start
        request_id = resp.getheader("X-Amzn-RequestId") or request_id
        if resp.status != 200:
            return InvokeError(InvocationError.TRANSPORT, f"HTTP {resp.status} {resp.reason}: "
                                                          f"{data[:300].decode(errors='replace')}",
                               duration_s=duration, request_id=request_id)
        function_error = resp.getheader("X-Amz-Function-Error")
        if function_error:
            return function_error_result(data, function_error, duration, request_id)
        try:
            response = parse_json_strict(data)
        except (ValueError, UnicodeDecodeError) as exc:
            return InvokeError(InvocationError.BAD_RESPONSE, f"response is not JSON: {exc}: "
                                                             f"{data[:120].decode(errors='replace')!r}",
                               duration_s=duration, request_id=request_id)
        return InvokeOk(response, duration, request_id)

    def close(self) -> None:
        super().close()
        self._drop_connection()


def function_error_result(data: bytes, function_error: str, duration: float, request_id: str) -> InvokeError:
    """Lambda's function-error body (``errorMessage``, ``errorType``, ``stackTrace``) as an InvokeError."""
    try:
        body: Any = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("errorMessage", ""))
        error_type = str(body.get("errorType") or function_error)
        trace = body.get("stackTrace")
        stack = tuple(str(x) for x in trace) if isinstance(trace, list) else ()
    else:
        message, error_type, stack = data[:300].decode(errors="replace"), function_error, ()
    return InvokeError(InvocationError.FUNCTION_ERROR, message, error_type, duration, request_id, stack)
