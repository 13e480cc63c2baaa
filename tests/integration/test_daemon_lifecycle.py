"""The daemon's life cycle end to end: ``gatewayd run`` as a subprocess under a NOTIFY_SOCKET this test
owns (sd_notify READY/STATUS/WATCHDOG/STOPPING/RELOADING), signals (SIGTERM, SIGHUP, SIGKILL), a real SIP
line on loopback called by ``gatewayd call``, local-directory buckets and the bundled recorder handler.
"""

from __future__ import annotations

import errno
import signal
import socket
from pathlib import Path

import pytest

from tests.integration.daemon_proc import DaemonProc, gatewayd_cli, sip_config
from tests.integration.sip_peers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            assert e.errno == errno.EADDRINUSE, e
            return True
    return False


def test_ready_only_once_the_line_is_up(tmp_path: Path) -> None:
    port = free_port()
    with DaemonProc(tmp_path, sip_config(tmp_path, port)) as d:
        d.start()
        ready = d.wait_ready()
        # the SIP line listens by the time READY=1 is sent (checked right away: it cannot close in between)
        assert udp_port_taken(port)
        first = d.notify.snapshot()[0]
        assert first.index == ready.index, f"sent before READY=1: {first.fields}"
        assert ready.pid == d.pid  # NotifyAccess=main: from the main process itself
        assert ready.get("STATUS") == "0 live calls; 1/1 lines up"
        d.wait_log("gatewayd ready")
        assert d.stop() == 0
        stopping = d.notify.wait(lambda m: "STOPPING=1" in m, after=ready, timeout=1.0)
        assert stopping.pid == d.pid
    assert not udp_port_taken(port)


def test_broken_config_exits_78_with_nothing_started(tmp_path: Path) -> None:
    port = free_port()
    cfg = sip_config(tmp_path, port)
    cfg["lines"][0]["prot"] = 5060  # unknown key
    with DaemonProc(tmp_path, cfg) as d:
        d.start()
        assert d.wait(15.0) == 78
        log = d.stderr()
        assert f"{d.config_path}:" in log and "prot" in log and "did you mean" in log, log
        line, col = log.split(f"{d.config_path}:", 1)[1].split(":")[:2]
        assert d.config_path.read_text().splitlines()[int(line) - 1][int(col) - 1:].startswith("prot"), log
        assert d.notify.snapshot() == []  # not even STATUS=
    assert not udp_port_taken(port)
    assert not (tmp_path / "state").exists()  # no spool, no status socket


def test_status_command_outside_the_daemon(tmp_path: Path) -> None:
    port = free_port()
    with DaemonProc(tmp_path, sip_config(tmp_path, port)) as d:
        d.start()
        d.wait_ready()
        out = gatewayd_cli("status", "--config", str(d.config_path))
        assert out.returncode == 0, out.stderr
        assert f"pid {d.pid}" in out.stdout
        assert "trunk" in out.stdout and "sip" in out.stdout and " up" in out.stdout
        assert "calls: 0" in out.stdout
        assert d.stop() == 0
    gone = gatewayd_cli("status", "--config", str(d.config_path))
    assert gone.returncode == 69 and "not running" in gone.stderr


_ = signal
