"""The service manager's end of ``$NOTIFY_SOCKET`` for tests and benchmarks that run ``gatewayd run``: every
message collected on a thread (as systemd reads them all along), waited for by predicate."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gatewayd.sdnotify import NotifyListener


class NotReady(RuntimeError):
    """The daemon exited, or said nothing, before READY=1."""


@dataclass
class Notification:
    """One datagram: its assignments, when it came (monotonic) and who sent it."""

    fields: dict[str, str]
    at: float  # time.monotonic()
    pid: int
    index: int
    wall: float = 0.0  # time.time(), to compare with file times

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)

    def __contains__(self, assignment: str) -> bool:
        key, _, value = assignment.partition("=")
        return self.fields.get(key) == value


@dataclass
class NotifySocket:
    """The service manager's end of ``$NOTIFY_SOCKET``: collects datagrams on a thread."""

    path: Path
    messages: list[Notification] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cv = threading.Condition()
        self.listener = NotifyListener(self.path)
        self.address = self.listener.address
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="notify-socket", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                got = self.listener.receive(0.2)
            except OSError:
                return
            if got is None:
                continue
            fields, pid = got
            with self._cv:
                self.messages.append(Notification(fields, time.monotonic(), pid, len(self.messages), time.time()))
                self._cv.notify_all()

    def wait(self, pred: Callable[[Notification], bool], timeout: float = 10.0,
             after: Notification | int | None = None) -> Notification:
        """The first message (after ``after``, a message or an index) for which ``pred`` holds."""
        start = after.index + 1 if isinstance(after, Notification) else (after or 0)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for m in self.messages[start:]:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching sd_notify message in {timeout} s; got "
                                       f"{[m.fields for m in self.messages[start:]]}")
                self._cv.wait(left)

    def snapshot(self) -> list[Notification]:
        with self._cv:
            return list(self.messages)

    def close(self) -> None:
        self._closed = True
        self._thread.join(1.0)
        self.listener.close()

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float, log: Callable[[], str]) -> Notification:
        """The READY=1 message from ``proc``'s daemon; ``NotReady`` (with ``log()``) when it exits first or
        ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.wait(lambda m: "READY=1" in m, timeout=0.2)
            except TimeoutError:
                pass
            if proc.poll() is not None:
                raise NotReady(f"gatewayd exited with {proc.returncode} before READY=1:\n{log()}")
            if time.monotonic() > deadline:
                raise NotReady(f"gatewayd sent no READY=1 within {timeout} s:\n{log()}")
