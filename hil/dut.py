"""The device under test: a real ``gatewayd run`` process, configured for one simulator's line.

It runs the scripted handler :mod:`hil.handler` in-process, with a local-directory bucket for prompts
and one for recordings, Prometheus metrics on a free loopback port, and its log in a file. Readiness
is the daemon's own ``READY=1`` on a ``NOTIFY_SOCKET`` this module owns (as systemd would).

Scenarios see the daemon only from outside: the handler's transcript (:meth:`Dut.transcript`), the
recordings (:meth:`Dut.recordings`), its log (:meth:`Dut.log_text`) and metrics (:meth:`Dut.metrics`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gatewayd.commands.status import query
from gatewayd.daemon import STATUS_SOCKET
from gatewayd.testing.daemon_env import daemon_env
from gatewayd.testing.notify import NotifySocket, NotReady
from gatewayd.testing.ports import free_port
from hil.dut_view import DutView
from media.frame import Samples
from media.wav import write_wav

log = logging.getLogger(__name__)

PROMPTS = "hil-prompts"
RECORDINGS = "hil-recordings"
APPLICATION = "hil"


@dataclass(frozen=True)
class DutSettings:
    """Knobs of the DUT's line a scenario may need (each backend's ``dut_line`` maps them)."""

    rings_before_answer: int = 2
    silence_hangup_s: float = 30.0
    max_call_s: float = 120.0
    cid_after_ring: int = 1  # an fxo line's FSK caller ID follows this ring


@dataclass(frozen=True)
class DutLine:
    """How the daemon reaches a simulator's line: the ``lines`` entry and extra environment."""

    entry: Mapping[str, Any]
    env: Mapping[str, str] = field(default_factory=dict)


class DutError(Exception):
    pass


class Dut(DutView):
    """One gatewayd process. :meth:`start` returns once it said READY=1."""

    def __init__(self, workdir: Path, line: DutLine, prompts: Mapping[str, Samples] | None = None,
                 media: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.workdir = workdir
        self.line = line
        self.line_name = str(line.entry["name"])
        self.config_path = workdir / "gatewayd.yaml"
        self.script_path = workdir / "script.json"
        self.transcript_path = workdir / "transcript.jsonl"
        self.log_path = workdir / "gatewayd.log"
        self.buckets = workdir / "buckets"
        self.metrics_port = free_port(socket.SOCK_STREAM)
        self.proc: subprocess.Popen[bytes] | None = None
        self._media = dict(media or {})
        self._prompts = dict(prompts or {})
        self._log_offset = 0
        self._notify: NotifySocket | None = None

    # ------------------------------------------------------------------ life cycle
    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.buckets / PROMPTS).mkdir(parents=True, exist_ok=True)
        (self.buckets / RECORDINGS).mkdir(parents=True, exist_ok=True)
        for key, samples in self._prompts.items():
            write_wav(self.buckets / PROMPTS / key, samples)
        cfg = {
            "state_dir": str(self.workdir / "state"),
            "log_level": "info",
            "lines": [dict(self.line.entry)],
            "applications": [{"name": APPLICATION, "handler": "python:hil.handler:handler", "timeout_s": 10.0,
                              "environment": {"HIL_SCRIPT": str(self.script_path),
                                              "HIL_TRANSCRIPT": str(self.transcript_path)}}],
            "rules": [{"name": "every-call", "trigger_type": "Line", "trigger_value": "*",
                       "target_applications": [{"application": APPLICATION, "priority": 1}]}],
            "buckets": [{"type": "local", "name": PROMPTS, "root": str(self.buckets)},
                        {"type": "local", "name": RECORDINGS, "root": str(self.buckets)}],
            "media": {"upload_wait_s": 5.0, "unknown_buckets": "reject", **self._media},
            "metrics": {"address": f"127.0.0.1:{self.metrics_port}"},
        }
        self.config_path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML
        self.set_script({})

    def start(self, timeout: float = 30.0) -> Dut:
        self.write_config()
        notify = NotifySocket(self.workdir / "notify.sock")  # read all along, as systemd does
        # PYTHONFAULTHANDLER: SIGABRT (see dump_threads) prints every thread's stack to the log
        env = daemon_env(**self.line.env, NOTIFY_SOCKET=notify.address, PYTHONFAULTHANDLER="1")
        logf = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "gatewayd", "run", "--config", str(self.config_path)],
                                         env=env, stdout=logf, stderr=subprocess.STDOUT, cwd=self.workdir)
        finally:
            logf.close()
        self._notify = notify
        try:
            notify.wait_ready(self.proc, timeout, self.whole_log_tail)
        except NotReady as e:
            self.stop()
            raise DutError(str(e)) from None
        log.info("gatewayd %d ready on line %s", self.proc.pid, self.line_name)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def dump_threads(self) -> str:
        """Diagnosis of a daemon that stopped responding: SIGABRT (it dies), and the thread stacks it printed."""
        if self.proc is None or self.proc.poll() is not None:
            return ""
        self.proc.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        return self.log_text()[-12000:]

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._notify is not None:
            notify, self._notify = self._notify, None
            notify.close()
        return self.proc.returncode

    # ------------------------------------------------------------------ the handler
    def set_script(self, script: Mapping[str, Any]) -> None:
        """What the handler answers from now on (see :mod:`hil.handler`)."""
        tmp = self.script_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(script))
        tmp.replace(self.script_path)

    def mark(self) -> None:
        """Start of a scenario: :meth:`transcript`, :meth:`log_text` and :meth:`recordings` count from here."""
        self.mark_view()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    # ------------------------------------------------------------------ DutView: where things are
    def _transcript_path(self) -> Path:
        return self.transcript_path

    def _all_recordings(self) -> list[Path]:
        return sorted((self.buckets / RECORDINGS).rglob("*.wav"))

    def _metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def _check_alive(self) -> None:
        if not self.alive:
            raise AssertionError(f"gatewayd exited ({self.proc.poll() if self.proc else None}):\n"
                                 f"{self.whole_log_tail()}")

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def whole_log_tail(self, n: int = 40) -> str:
        """The end of the daemon's log, marks aside (start-up failures, a daemon that died)."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def status(self) -> dict[str, Any]:
        """``gatewayd status``: the daemon's status socket (lines and their state, live calls, counters)."""
        return query(str(self.workdir / "state" / STATUS_SOCKET))

    def line_state(self) -> str:
        for ln in self.status()["lines"]:
            if ln["name"] == self.line_name:
                return str(ln["state"])
        return "missing"


def silence(seconds: float) -> Samples:
    return np.zeros(round(seconds * 8000), dtype=np.int16)
