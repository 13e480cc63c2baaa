"""The three invokers against real endpoints: in-process, HTTP (Lambda Invoke API) and boto3, the last two
served by gatewayd's lambda-host. Errors: timeout, function error, bad JSON, transport."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gatewayd.invokers import InvocationError, InvokeError, InvokeOk, Invoker, make_invoker
from gatewayd.invokers.aws_lambda import Boto3Invoker
from gatewayd.invokers.inprocess import HandlerSpecError, PythonInvoker
from gatewayd.invokers.lambda_host import LambdaHost
from gatewayd.invokers.lambda_http import HttpInvoker
from gatewayd.testing.ports import free_port
from tests.functional import handler_fixtures

FIX = "tests.functional.handler_fixtures"
EVENT = {"SchemaVersion": "1.0", "Sequence": 1, "InvocationEventType": "NEW_INBOUND_CALL", "CallDetails": {}}


@pytest.fixture(autouse=True)
def _aws_dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "gatewayd-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "gatewayd-test")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def serve() -> Iterator[Callable[..., LambdaHost]]:
    hosts: list[LambdaHost] = []

    def start(function: str, **kw: Any) -> LambdaHost:
        host = LambdaHost(f"{FIX}:{function}", **kw).start()
        hosts.append(host)
        return host

    yield start
    handler_fixtures.release()
    for h in hosts:
        h.close()


@pytest.fixture
def invokers() -> Iterator[Callable[[Invoker], Invoker]]:
    made: list[Invoker] = []
    yield lambda inv: made.append(inv) or inv  # type: ignore[func-returns-value]
    handler_fixtures.release()
    for inv in made:
        inv.close()


class _Garbage(BaseHTTPRequestHandler):
    """An endpoint that answers 200 with a body that is not JSON (a broken proxy, a misrouted URL)."""

    protocol_version = "HTTP/1.1"
    body = b"<html>gateway error</html>"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def garbage_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def ok(result: Any) -> Any:
    assert isinstance(result, InvokeOk), result
    return result.response


def error(result: Any, kind: InvocationError) -> InvokeError:
    assert isinstance(result, InvokeError) and result.kind is kind, result
    return result


# ------------------------------------------------------------------------------------------ python:
def test_python_invoker_keeps_the_module_warm(invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(PythonInvoker(f"python:{FIX}:count"))
    first = ok(inv.invoke(EVENT, 5))["calls"]
    assert ok(inv.invoke(EVENT, 5))["calls"] == first + 1
    assert ok(inv.invoke(EVENT, 5))["calls"] == first + 2


def test_python_invoker_context_and_environment(invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(make_invoker(f"python:{FIX}:context_info", environment={"FIXTURE_GREETING": "hello"},
                                region="eu-west-1", account_id="123456789012"))
    a, b = ok(inv.invoke(EVENT, 3.0)), ok(inv.invoke(EVENT, 3.0))
    assert a["function_name"] == "handler_fixtures" and a["env"] == "hello"
    assert a["arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:handler_fixtures"
    assert 2000 < a["remaining_ms"] <= 3000
    assert a["request_id"] != b["request_id"]


def test_python_invoker_gives_the_handler_its_own_copy_of_the_event(invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(PythonInvoker(f"{FIX}:mutate"))
    payload = {"CallDetails": {"TransactionId": "t"}}
    assert ok(inv.invoke(payload, 5)) == {"ok": True}
    assert payload == {"CallDetails": {"TransactionId": "t"}}


def test_python_invoker_handler_exception_is_a_function_error(invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(PythonInvoker(f"{FIX}:boom"))
    e = error(inv.invoke(EVENT, 5), InvocationError.FUNCTION_ERROR)
    assert (e.error_type, e.message) == ("ValueError", "the handler broke")
    assert any("boom" in line for line in e.stack_trace)


def test_python_invoker_timeout_does_not_wait_for_the_handler(invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(PythonInvoker(f"{FIX}:slow"))
    t = time.monotonic()
    e = error(inv.invoke({"sleep": 30}, 0.3), InvocationError.TIMEOUT)
    assert time.monotonic() - t < 5 and "0.30" in e.message
    assert inv.stuck == 1
    handler_fixtures.release()
    deadline = time.monotonic() + 5
    while inv.stuck and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inv.stuck == 0  # the late result was dropped


@pytest.mark.parametrize(("function", "error_type"), [("not_json", "Runtime.MarshalError"),
                                                      ("nan", "Runtime.MarshalError"),
                                                      ("leave", "Runtime.ExitError"),
                                                      ("no_such_function", "Runtime.HandlerNotFound"),
                                                      ("not_callable", "Runtime.HandlerNotFound")])
def test_python_invoker_failures_are_typed(invokers: Callable[[Invoker], Invoker], function: str,
                                           error_type: str) -> None:
    inv = invokers(PythonInvoker(f"{FIX}:{function}"))
    assert error(inv.invoke(EVENT, 5), InvocationError.FUNCTION_ERROR).error_type == error_type


def test_python_invoker_import_error_is_reported_and_the_daemon_survives(
        invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(PythonInvoker("tests.functional.broken_module:handler"))
    e = error(inv.invoke(EVENT, 5), InvocationError.FUNCTION_ERROR)
    assert e.error_type == "Runtime.ImportModuleError" and "cannot import me" in e.message
    assert error(inv.invoke(EVENT, 5), InvocationError.FUNCTION_ERROR).error_type == "Runtime.ImportModuleError"


def test_python_invoker_none_is_a_response(invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(PythonInvoker(f"{FIX}:returns_none"))
    assert ok(inv.invoke(EVENT, 5)) is None


def test_python_invoker_awaitable_does_not_block_the_loop(invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(PythonInvoker(f"{FIX}:slow"))

    async def main() -> tuple[Any, int]:
        ticks = 0
        task = asyncio.ensure_future(inv.invoke_async({"sleep": 0.3}, 5))
        while not task.done():
            ticks += 1
            await asyncio.sleep(0.01)
        return task.result(), ticks

    result, ticks = asyncio.run(main())
    assert ok(result) == {"slept": True} and ticks >= 10


def test_python_invoker_environment_conflicts_are_refused(invokers: Callable[[Invoker], Invoker]) -> None:
    invokers(PythonInvoker(f"{FIX}:echo", environment={"FIXTURE_SHARED": "one"}))
    with pytest.raises(HandlerSpecError, match="FIXTURE_SHARED"):
        PythonInvoker(f"{FIX}:count", environment={"FIXTURE_SHARED": "two"})


def test_python_invoker_gives_the_environment_back_when_the_last_holder_closes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    monkeypatch.setenv("FIXTURE_BEFORE", "operator's")
    monkeypatch.delenv("FIXTURE_NEW", raising=False)
    env = {"FIXTURE_BEFORE": "handler's", "FIXTURE_NEW": "x"}
    first, second = PythonInvoker(f"{FIX}:echo", environment=env), PythonInvoker(f"{FIX}:echo", environment=env)
    assert os.environ["FIXTURE_BEFORE"] == "handler's" and os.environ["FIXTURE_NEW"] == "x"
    first.close()
    first.close()  # closing twice releases once
    assert os.environ["FIXTURE_BEFORE"] == "handler's", "still held by the second invoker"
    second.close()
    assert os.environ["FIXTURE_BEFORE"] == "operator's" and "FIXTURE_NEW" not in os.environ
    PythonInvoker(f"{FIX}:count", environment={"FIXTURE_NEW": "another value"}).close()  # no conflict any more


@pytest.mark.parametrize("target", ["python:nomodule", "ftp://x", "arn:aws:s3:::bucket", "has space"])
def test_make_invoker_refuses_unknown_targets(target: str) -> None:
    with pytest.raises(ValueError, match="is not"):
        make_invoker(target)


# ------------------------------------------------------------------------------------------ http://
def test_http_invoker_against_lambda_host_with_keep_alive(serve: Callable[..., LambdaHost],
                                                          invokers: Callable[[Invoker], Invoker]) -> None:
    host = serve("echo")
    inv = invokers(make_invoker(f"{host.endpoint_url}/2015-03-31/functions/voicemail/invocations", workers=1))
    for i in range(10):
        assert ok(inv.invoke({**EVENT, "Sequence": i}, 5))["Echo"]["Sequence"] == i
    assert (host.requests, host.connections) == (10, 1)


def test_http_invoker_shorthand_url(serve: Callable[..., LambdaHost], invokers: Callable[[Invoker], Invoker]) -> None:
    host = serve("echo", function_name="vm")
    inv = invokers(HttpInvoker(f"{host.endpoint_url}/vm"))
    assert inv.path == "/2015-03-31/functions/vm/invocations"
    assert ok(inv.invoke(EVENT, 5))["Echo"] == EVENT


def test_http_invoker_function_error(serve: Callable[..., LambdaHost],
                                     invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(HttpInvoker(f"{serve('boom').endpoint_url}/fn"))
    e = error(inv.invoke(EVENT, 5), InvocationError.FUNCTION_ERROR)
    assert (e.error_type, e.message) == ("ValueError", "the handler broke") and e.stack_trace


def test_http_invoker_handler_timeout_inside_the_host(serve: Callable[..., LambdaHost],
                                                      invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(HttpInvoker(f"{serve('slow', timeout=0.3).endpoint_url}/fn"))
    e = error(inv.invoke({"sleep": 30}, 5), InvocationError.FUNCTION_ERROR)
    assert e.error_type == "Sandbox.Timedout" and e.message.endswith("Task timed out after 0.30 seconds")


def test_http_invoker_client_timeout(serve: Callable[..., LambdaHost], invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(HttpInvoker(f"{serve('slow', timeout=30).endpoint_url}/fn"))
    t = time.monotonic()
    error(inv.invoke({"sleep": 30}, 0.3), InvocationError.TIMEOUT)
    assert time.monotonic() - t < 5


def test_http_invoker_bad_json(garbage_url: str, invokers: Callable[[Invoker], Invoker]) -> None:
    e = error(invokers(HttpInvoker(f"{garbage_url}/fn")).invoke(EVENT, 5), InvocationError.BAD_RESPONSE)
    assert "gateway error" in e.message


def test_http_invoker_transport_errors(serve: Callable[..., LambdaHost],
                                       invokers: Callable[[Invoker], Invoker]) -> None:
    closed = free_port(socket.SOCK_STREAM)
    e = error(invokers(HttpInvoker(f"http://127.0.0.1:{closed}/fn")).invoke(EVENT, 5), InvocationError.TRANSPORT)
    assert "Connection" in e.message or "refused" in e.message
    host = serve("echo", function_name="only-this")
    e = error(invokers(HttpInvoker(f"{host.endpoint_url}/other")).invoke(EVENT, 5), InvocationError.TRANSPORT)
    assert "HTTP 404" in e.message and "Function not found" in e.message


def test_http_invoker_reconnects_when_the_server_dropped_the_idle_connection(
        invokers: Callable[[Invoker], Invoker]) -> None:
    port = free_port(socket.SOCK_STREAM)
    inv = invokers(HttpInvoker(f"http://127.0.0.1:{port}/fn", workers=1))
    with LambdaHost(f"{FIX}:echo", port=port):
        ok(inv.invoke(EVENT, 5))
    with LambdaHost(f"{FIX}:echo", port=port) as second:
        assert ok(inv.invoke(EVENT, 5))["Echo"] == EVENT
        assert second.connections == 1


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://127.0.0.1:9/a/b", "file:///x"])
def test_http_invoker_refuses_urls_without_a_function(url: str) -> None:
    with pytest.raises(ValueError):
        HttpInvoker(url)


# ------------------------------------------------------------------------------------------ arn / name (boto3)
def test_boto3_invoker_against_lambda_host(serve: Callable[..., LambdaHost],
                                           invokers: Callable[[Invoker], Invoker]) -> None:
    host = serve("echo")
    inv = invokers(make_invoker("voicemail", endpoint_url=host.endpoint_url, region="us-east-1"))
    assert isinstance(inv, Boto3Invoker)
    result = inv.invoke(EVENT, 10)
    assert ok(result)["Echo"] == EVENT
    assert isinstance(result, InvokeOk) and result.request_id


def test_boto3_invoker_arn_target_takes_its_region(serve: Callable[..., LambdaHost],
                                                   invokers: Callable[[Invoker], Invoker]) -> None:
    host = serve("echo")
    arn = "arn:aws:lambda:eu-central-1:123456789012:function:voicemail"
    inv = invokers(make_invoker(arn, endpoint_url=host.endpoint_url))
    assert isinstance(inv, Boto3Invoker) and inv.region == "eu-central-1"
    assert ok(inv.invoke(EVENT, 10))["Echo"] == EVENT


def test_boto3_invoker_function_error(serve: Callable[..., LambdaHost],
                                      invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(Boto3Invoker("fn", endpoint_url=serve("boom").endpoint_url, region="us-east-1"))
    e = error(inv.invoke(EVENT, 10), InvocationError.FUNCTION_ERROR)
    assert (e.error_type, e.message) == ("ValueError", "the handler broke")


def test_boto3_invoker_timeout(serve: Callable[..., LambdaHost], invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(Boto3Invoker("fn", endpoint_url=serve("slow", timeout=30).endpoint_url, region="us-east-1"))
    inv.invoke(EVENT | {"sleep": 0}, 10)  # client created and connected before timing
    t = time.monotonic()
    error(inv.invoke({"sleep": 30}, 1.0), InvocationError.TIMEOUT)
    assert time.monotonic() - t < 6


def test_boto3_invoker_bad_json(garbage_url: str, invokers: Callable[[Invoker], Invoker]) -> None:
    inv = invokers(Boto3Invoker("fn", endpoint_url=garbage_url, region="us-east-1"))
    error(inv.invoke(EVENT, 10), InvocationError.BAD_RESPONSE)


def test_boto3_invoker_transport_error(invokers: Callable[[Invoker], Invoker]) -> None:
    closed = free_port(socket.SOCK_STREAM)
    inv = invokers(Boto3Invoker("fn", endpoint_url=f"http://127.0.0.1:{closed}", region="us-east-1"))
    e = error(inv.invoke(EVENT, 10), InvocationError.TRANSPORT)
    assert "EndpointConnectionError" in e.message


def test_results_map_onto_engine_events(invokers: Callable[[Invoker], Invoker]) -> None:
    from gatewayd.invokers import as_event
    from gatewayd.sma import events as V

    good = invokers(PythonInvoker(f"{FIX}:echo")).invoke(EVENT, 5)
    assert as_event(7, good) == V.HandlerResponded(7, {"SchemaVersion": "1.0", "Actions": [], "Echo": EVENT})
    bad = invokers(PythonInvoker(f"{FIX}:boom")).invoke(EVENT, 5)
    assert as_event(8, bad) == V.HandlerFailed(8, InvocationError.FUNCTION_ERROR, "ValueError: the handler broke")
