"""sd_notify over a NOTIFY_SOCKET the test owns, queued logging with call context, metrics exposition."""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
from pathlib import Path

import pytest

from gatewayd.logs import call_context, setup_logging
from gatewayd.metrics import MetricsServer, Registry
from gatewayd.sdnotify import Notifier, NotifyListener


def test_notify_messages_reach_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(2)
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())})
    assert n.enabled and n.watchdog_interval == 2.0
    n.ready("2 lines up")
    n.watchdog()
    n.stopping()
    got = [srv.recv(4096).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=2 lines up", "WATCHDOG=1", "STOPPING=1"]
    n.close()
    srv.close()


def test_a_manager_that_does_not_read_never_blocks_the_sender(tmp_path: Path) -> None:
    # A full notify socket once froze the whole daemon (a blocking sendto on its event loop).
    import threading

    path = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)  # never read
    n = Notifier({"NOTIFY_SOCKET": path})
    results: list[bool] = []
    sender = threading.Thread(target=lambda: results.extend(n.watchdog() for _ in range(5000)), daemon=True)
    sender.start()
    sender.join(10)
    assert not sender.is_alive(), "Notifier.send blocked on a full socket"
    assert results[0] is True and results[-1] is False  # accepted until the queue filled, then dropped
    srv.recv(4096)
    assert n.status("draining") is True  # room again: messages flow
    n.close()
    srv.close()


def test_abstract_socket_and_foreign_watchdog_pid() -> None:
    name = f"gatewayd-test-{os.getpid()}"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind("\0" + name)
    srv.settimeout(2)
    n = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"})
    assert n.watchdog_interval is None  # the watchdog is someone else's
    assert n.status("idle")
    assert srv.recv(100) == b"STATUS=idle"
    srv.close()


def test_listener_gets_assignments_and_the_sender_pid(tmp_path: Path) -> None:
    for where in (tmp_path / "n.sock", tmp_path / ("x" * 120) / "n.sock"):  # a path, then too long: abstract
        listener = NotifyListener(where)
        n = Notifier({"NOTIFY_SOCKET": listener.address})
        assert n.ready("up") and n.watchdog()
        assert listener.receive(2.0) == ({"READY": "1", "STATUS": "up"}, os.getpid())
        assert listener.receive(2.0) == ({"WATCHDOG": "1"}, os.getpid())
        assert listener.receive(0.05) is None
        n.close()
        listener.close()
    assert not (tmp_path / "n.sock").exists()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled and not n.ready() and n.watchdog_interval is None


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_logging_goes_through_a_queue_with_call_context() -> None:
    cap = Capture()
    lg = setup_logging("info", cap)
    try:
        token = call_context.set({"CALL_ID": "c1", "TRANSACTION_ID": "t1", "LINE": "sip"})
        logging.getLogger("gatewayd.test").info("answered %s", "x")
        call_context.reset(token)
        logging.getLogger("gatewayd.test").warning("plain", extra={"LINE": "modem0"})
    finally:
        lg.stop()
    assert [r.getMessage() for r in cap.records] == ["answered x", "plain"]
    r0, r1 = cap.records
    assert (r0.CALL_ID, r0.TRANSACTION_ID, r0.LINE) == ("c1", "t1", "sip")  # type: ignore[attr-defined]
    assert r1.LINE == "modem0" and not hasattr(r1, "CALL_ID")  # type: ignore[attr-defined]


def test_journal_handler_sends_structured_fields() -> None:
    journal = pytest.importorskip("systemd.journal")
    sent: list[tuple[str, dict[str, object]]] = []

    def sender(message: str, /, **fields: object) -> None:  # journal.send's shape; fields carry "msg" too
        sent.append((message, fields))

    h = journal.JournalHandler(sender_function=sender)
    lg = setup_logging("info", h)
    try:
        token = call_context.set({"CALL_ID": "c9", "TRANSACTION_ID": "t9", "LINE": "fxo0"})
        logging.getLogger("gatewayd.test").error("recording failed")
        call_context.reset(token)
    finally:
        lg.stop()
    msg, fields = sent[0]
    assert msg == "recording failed"
    got = (fields["CALL_ID"], fields["TRANSACTION_ID"], fields["LINE"], fields["PRIORITY"])
    assert got == ("c9", "t9", "fxo0", "3")


def test_metrics_exposition_over_http() -> None:
    reg = Registry()
    calls = reg.counter("gatewayd_calls_total", "Calls by line and outcome.", ["line", "outcome"])
    lat = reg.histogram("gatewayd_handler_latency_seconds", "Handler latency.", buckets=(0.01, 0.1))
    reg.gauge("gatewayd_spool_backlog", "Recordings waiting for upload.", read=lambda: 3)
    calls.inc(line="sip", outcome="completed")
    calls.inc(2, line="sip", outcome="completed")
    lat.observe(0.005)
    lat.observe(0.05)
    lat.observe(5)
    srv = MetricsServer(reg, "127.0.0.1", 0)
    srv.start()
    try:
        host, port = srv.address
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    finally:
        srv.stop()
    assert 'gatewayd_calls_total{line="sip",outcome="completed"} 3' in body
    assert 'gatewayd_handler_latency_seconds_bucket{le="0.01"} 1' in body
    assert 'gatewayd_handler_latency_seconds_bucket{le="0.1"} 2' in body
    assert 'gatewayd_handler_latency_seconds_bucket{le="+Inf"} 3' in body
    assert "gatewayd_handler_latency_seconds_count 3" in body
    assert "gatewayd_spool_backlog 3" in body
    assert "# TYPE gatewayd_calls_total counter" in body


def test_store_events_feed_the_daemons_metrics() -> None:
    from gatewayd.daemon import DaemonMetrics
    from gatewayd.store import StoreEvent

    reg = Registry()
    m = DaemonMetrics(reg)
    m.store_event(StoreEvent("confirmed", "r1", {"latency": 0.12}))
    m.store_event(StoreEvent("outcome", "r1", {"ok": True}))
    m.store_event(StoreEvent("attempt_failed", "r2", {"error": "503", "transient": True}))
    m.store_event(StoreEvent("outcome", "r2", {"ok": False, "detail": "timeout"}))
    body = reg.render()
    assert 'gatewayd_upload_latency_seconds_bucket{le="0.2"} 1' in body
    assert 'gatewayd_upload_latency_seconds_bucket{le="0.1"} 0' in body
    assert 'gatewayd_recordings_total{outcome="uploaded"} 1' in body
    assert 'gatewayd_recordings_total{outcome="failed"} 1' in body
    assert "gatewayd_upload_attempts_failed_total 1" in body
