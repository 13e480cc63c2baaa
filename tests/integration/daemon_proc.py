"""The daemon as a subprocess, for end-to-end tests: ``python -m gatewayd run --config FILE``.

The test owns the sd_notify socket (gatewayd.sdnotify.NotifyListener: AF_UNIX datagrams in the test directory, with
SO_PASSCRED so every message carries the sender's pid, as systemd checks for ``NotifyAccess=main``).
``WATCHDOG_PID`` is set to the daemon's own pid the way systemd does it: a shell exports ``$$`` and
``exec``s the interpreter, so the pid does not change.

API::

    with DaemonProc(tmp_path, sip_config(tmp_path, port), watchdog_usec=2_000_000) as d:
        d.start()
        ready = d.wait_ready()              # the READY=1 Notification
        d.notify.wait(lambda m: m.get("STATUS", "").startswith("1 live"), after=ready)
        d.status()                          # the status socket's JSON (what ``gatewayd status`` shows)
        d.reload({...new config...})        # rewrite the file, SIGHUP
        rc = d.stop()                       # SIGTERM, wait, exit code
        d.stderr()                          # the daemon's log so far

``sip_config`` builds a config dict (one SIP line on loopback, local-directory buckets under the
test's directory, the bundled recorder handler in-process; edit it freely, e.g. an S3 bucket);
``bucket_files`` lists a local bucket's objects; ``place_call``/``call_report`` run ``gatewayd call``;
``gatewayd_cli`` runs any other subcommand; ``thread_ids``/``frozen_thread`` stop one thread of the
daemon (the media worker names itself ``media-worker`` at OS level).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatewayd.commands.status import query
from gatewayd.testing.daemon_env import daemon_env as child_env
from gatewayd.testing.notify import Notification, NotifySocket, NotReady

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = "gatewayd-recordings"


# ------------------------------------------------------------------ sd_notify
# ------------------------------------------------------------------ config
def sip_config(workdir: Path, port: int, *, handler: str = "python:gatewayd.handlers.recorder:handler",
               environment: dict[str, str] | None = None) -> dict[str, Any]:
    """One SIP line ``trunk`` on 127.0.0.1:``port``, every call to application ``recorder`` (``handler``),
    local-directory buckets under ``workdir/buckets``, state in ``workdir/state``, no metrics listener."""
    return {
        "state_dir": str(workdir / "state"),
        "log_level": "info",
        "lines": [{"name": "trunk", "type": "sip", "bind_address": "127.0.0.1", "port": port,
                   "allowed_peers": ["127.0.0.1/32"]}],
        "applications": [{"name": "recorder", "handler": handler, "environment": dict(environment or {})}],
        "rules": [{"name": "every-call", "trigger_type": "Line", "trigger_value": "*",
                   "target_applications": [{"application": "recorder"}]}],
        "buckets": [{"name": RECORDINGS, "type": "local", "root": str(workdir / "buckets")}],
        "media": {"unknown_buckets": "reject"},
        "metrics": {"address": None},
    }


def bucket_files(workdir: Path, bucket: str = RECORDINGS, pattern: str = "**/*.wav") -> list[Path]:
    """Objects of a local bucket made by :func:`sip_config` (sidecar/temp files excluded)."""
    root = workdir / "buckets" / bucket
    return sorted(p for p in root.glob(pattern) if p.is_file() and not p.name.startswith("."))


# ------------------------------------------------------------------ the daemon
class DaemonProc:
    """One ``gatewayd run`` subprocess with its config file, notify socket and log in ``workdir``."""

    def __init__(self, workdir: Path, config: dict[str, Any] | str, *, watchdog_usec: int | None = None,
                 env: dict[str, str] | None = None, name: str = "gatewayd") -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / f"{name}.yaml"
        self.stderr_path = workdir / f"{name}.stderr"
        self.watchdog_usec = watchdog_usec
        self.extra_env = dict(env or {})
        self.notify = NotifySocket(workdir / f"{name}.notify")
        self.proc: subprocess.Popen[bytes] | None = None
        self.write_config(config)

    # config ----------------------------------------------------------
    def write_config(self, config: dict[str, Any] | str) -> None:
        self.config = config
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config_path)

    @property
    def state_dir(self) -> Path:
        assert isinstance(self.config, dict), "state_dir is known for dict configs only"
        return Path(self.config["state_dir"])

    # life cycle ------------------------------------------------------
    def start(self) -> DaemonProc:
        env = child_env(NOTIFY_SOCKET=self.notify.address, **self.extra_env)
        argv = [sys.executable, "-m", "gatewayd", "run", "--config", str(self.config_path)]
        if self.watchdog_usec:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
            # as systemd does: WATCHDOG_PID is the main pid; exec keeps the shell's pid
            argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", *argv]
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(argv, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(self, timeout: float = 15.0) -> Notification:
        """The READY=1 message; fails early with the log when the daemon exits first."""
        assert self.proc is not None
        try:
            return self.notify.wait_ready(self.proc, timeout, self.stderr)
        except NotReady as e:
            raise AssertionError(str(e)) from None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def reload(self, config: dict[str, Any] | str) -> None:
        self.write_config(config)
        self.signal(signal.SIGHUP)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        rc = self.proc.wait(timeout)
        self._stderr.close()
        return rc

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then the exit code (within ``timeout`` s)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        return self.wait(10.0)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10.0)
        if self.proc is not None:
            self._stderr.close()
        self.notify.close()

    def __enter__(self) -> DaemonProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # observing -------------------------------------------------------
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def wait_log(self, text: str, timeout: float = 10.0, count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        while True:
            log = self.stderr()
            if log.count(text) >= count:
                return log
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged {count}x in {timeout} s:\n{log}")
            time.sleep(0.05)

    @property
    def status_socket(self) -> Path:
        runtime = self.extra_env.get("RUNTIME_DIRECTORY")
        return Path(runtime.split(":")[0]) / "gatewayd.sock" if runtime else self.state_dir / "gatewayd.sock"

    def status(self) -> dict[str, Any]:
        return query(str(self.status_socket))


@contextlib.contextmanager
def running_daemon(workdir: Path, config: dict[str, Any] | str, **kw: Any) -> Iterator[DaemonProc]:
    """A started daemon, READY, stopped (killed if need be) at the end."""
    with DaemonProc(workdir, config, **kw) as d:
        d.start()
        d.wait_ready()
        yield d


# ------------------------------------------------------------------ freezing one thread
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000


def thread_ids(pid: int, name: str) -> list[int]:
    """Native ids of the threads of ``pid`` whose OS-level name (``/proc/PID/task/TID/comm``) is ``name``."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            if (task / "comm").read_text().strip() == name:
                out.append(int(task.name))
    return out


@contextlib.contextmanager
def frozen_thread(pid: int, tid: int) -> Iterator[None]:
    """Stop one thread (not its process: SIGSTOP would stop them all) with ptrace: PTRACE_SEIZE then
    PTRACE_INTERRUPT puts just that thread in a ptrace-stop until PTRACE_DETACH. The thread is frozen
    exactly as a thread stuck in the kernel would be. It is caught blocked in a system call (the media
    worker's queue wait), not running Python code: a thread frozen while holding the GIL would stall
    the whole interpreter, which is another failure. Needs CAP_SYS_PTRACE or a child process (Yama)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long

    def ptrace(request: int, what: str) -> None:
        if libc.ptrace(request, tid, None, None) == -1:
            e = ctypes.get_errno()
            raise OSError(e, f"ptrace {what} of thread {tid}: {os.strerror(e)}")

    for _ in range(100):
        try:
            ptrace(PTRACE_SEIZE, "SEIZE")
        except PermissionError as e:  # no CAP_SYS_PTRACE, Yama ptrace_scope 3, or a seccomp profile without ptrace
            pytest.skip(f"this machine does not allow ptrace: {e}")
        ptrace(PTRACE_INTERRUPT, "INTERRUPT")
        os.waitpid(tid, WALL)  # the thread is in its ptrace-stop from here
        if not Path(f"/proc/{pid}/task/{tid}/syscall").read_text().startswith("running"):
            break
        ptrace(PTRACE_DETACH, "DETACH")  # caught in user space: let it run on and try again
        time.sleep(0.01)
    else:
        raise AssertionError(f"thread {tid} was never caught blocked in a system call")
    try:
        yield
    finally:
        ptrace(PTRACE_DETACH, "DETACH")


# ------------------------------------------------------------------ calls
def gatewayd_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``python -m gatewayd ARGS...`` to completion, output captured (check the return code yourself)."""
    return subprocess.run([sys.executable, "-m", "gatewayd", *args], env=child_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


def place_call(uri: str, *args: str, workdir: Path | None = None) -> subprocess.Popen[str]:
    """``gatewayd call URI ARGS... --json`` in a subprocess (the SIP trunk driver as caller); see call_report."""
    return subprocess.Popen([sys.executable, "-m", "gatewayd", "call", uri, *args, "--json"], env=child_env(),
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def call_report(proc: subprocess.Popen[str], timeout: float = 30.0) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert out.strip(), f"gatewayd call printed nothing (exit {proc.returncode}):\n{err}"
    report: dict[str, Any] = json.loads(out)
    report["_stderr"] = err
    return report
