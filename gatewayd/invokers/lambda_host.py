"""A Python handler behind the Lambda Invoke API, on loopback (``gatewayd lambda-host``).

Like ``sam local start-lambda`` without containers: ``POST /2015-03-31/functions/NAME/invocations``
runs the handler in-process (warm, through :class:`~gatewayd.invokers.inprocess.PythonInvoker`) and
answers as Lambda does — 200 with the JSON result; 200 with ``X-Amz-Function-Error: Unhandled`` and an
``errorMessage`` / ``errorType`` / ``stackTrace`` body when the handler raised or timed out; 4xx with
``x-amzn-ErrorType`` for requests Lambda itself would refuse. boto3's ``lambda`` client (with
``endpoint_url``) and :class:`~gatewayd.invokers.lambda_http.HttpInvoker` both talk to it.

Connections are HTTP/1.1 keep-alive with TCP_NODELAY (without it, Nagle plus delayed ACKs put ~40 ms
on every call).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gatewayd.invokers.base import InvocationError, InvokeError, parse_json_strict
from gatewayd.invokers.inprocess import PythonInvoker

log = logging.getLogger(__name__)

_PATH_RE = re.compile(r"^/2015-03-31/functions/([^/?]+)/invocations(?:\?.*)?$")
MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous payload limit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    host: LambdaHost


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # TCP_NODELAY on every accepted connection
    server: _Server

    def setup(self) -> None:
        super().setup()
        host = self.server.host
        with host.lock:
            host.connections += 1
            host.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.host.lock:
            self.server.host.open_connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status: int, error_type: str, message: str) -> None:
        self._reply(status, {"Type": "User", "message": message}, {"x-amzn-ErrorType": error_type})

    def do_POST(self) -> None:
        host = self.server.host
        with host.lock:
            host.requests += 1
        m = _PATH_RE.match(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD:
            self.close_connection = True
            self._refuse(413, "RequestTooLargeException", f"Request must be smaller than {MAX_PAYLOAD} bytes")
            return
        body = self.rfile.read(length)
        if not m:
            self._refuse(404, "UnknownOperationException", f"Unknown operation {self.path}")
            return
        name = urllib.parse.unquote(m.group(1))
        if host.function_name is not None and name not in (host.function_name,) and not name.endswith(
                f":function:{host.function_name}"):
            self._refuse(404, "ResourceNotFoundException", f"Function not found: {name}")
            return
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            self._reply(204, None)
            return
        if invocation_type != "RequestResponse":
            self._refuse(400, "InvalidParameterValueException",
                         f"InvocationType {invocation_type} is not supported by gatewayd lambda-host")
            return
        try:
            event = parse_json_strict(body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            self._refuse(400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}")
            return
        result = host.invoker.invoke(event, host.timeout)
        headers = {"X-Amzn-RequestId": result.request_id, "X-Amz-Executed-Version": "$LATEST"}
        if isinstance(result, InvokeError):
            body_out: dict[str, Any]
            if result.kind is InvocationError.TIMEOUT:
                body_out = {"errorMessage": f"{result.request_id} Task timed out after {host.timeout:.2f} seconds",
                            "errorType": "Sandbox.Timedout"}
            else:
                body_out = {"errorMessage": result.message, "errorType": result.error_type or "Unhandled",
                            "stackTrace": list(result.stack_trace)}
            headers["X-Amz-Function-Error"] = "Unhandled"
            self._reply(200, body_out, headers)
            return
        self._reply(200, result.response, headers)


class LambdaHost:
    """Serve ``handler`` (``package.module:function``) on ``host:port`` (0: any free port)."""

    def __init__(self, handler: str, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 20.0,
                 function_name: str | None = None, environment: dict[str, str] | None = None,
                 workers: int = 8) -> None:
        self.invoker = PythonInvoker(handler, environment=environment, function_name=function_name,
                                     workers=workers)
        self.function_name = function_name
        self.timeout = timeout
        self.requests = 0
        self.connections = 0
        self.lock = threading.Lock()
        self.open_connections: set[socket.socket] = set()
        self._server = _Server((host, port), _RequestHandler)
        self._server.host = self
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def endpoint_url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def load(self) -> None:
        """Import the handler now (raises what the import raises)."""
        self.invoker.load()

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> LambdaHost:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="lambda-host", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening and drop the kept-alive connections (their clients reconnect elsewhere)."""
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        with self.lock:
            conns = list(self.open_connections)
        for conn in conns:
            with contextlib.suppress(OSError):  # already gone
                conn.shutdown(socket.SHUT_RDWR)
        self.invoker.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LambdaHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
