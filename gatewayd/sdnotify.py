"""The sd_notify protocol (Type=notify): READY, STATUS, WATCHDOG, STOPPING, RELOADING.

A datagram to ``$NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket). Without the variable
every call is a no-op, so the daemon runs the same outside systemd. The watchdog interval comes from
``$WATCHDOG_USEC`` (honoured only when ``$WATCHDOG_PID`` is unset or names this process); the daemon
pings at half of it, and only while the media worker's heartbeat is fresh.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import uuid
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        self._addr: str | None = ("\0" + addr[1:]) if addr.startswith("@") else (addr or None)
        self._sock: socket.socket | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_usec: int | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_usec = int(usec)

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half the watchdog timeout), or None when no watchdog is set."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def send(self, *assignments: str) -> bool:
        if self._addr is None:
            return False
        try:
            if self._sock is None:
                kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                self._sock = socket.socket(socket.AF_UNIX, kind)
            self._sock.sendto("\n".join(assignments).encode(), self._addr)
            return True
        except BlockingIOError:
            # The manager is not reading (its queue is full): drop the message rather than block the event
            # loop that sends it; a manager that never reads will see the watchdog lapse, which is right.
            log.warning("sd_notify to %s: the socket is full, %s dropped", self._addr, assignments[0].split("=")[0])
            return False
        except OSError as e:
            log.warning("sd_notify to %s failed: %s", self._addr, e)
            return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *(("STATUS=" + status,) if status else ()))

    def status(self, text: str) -> bool:
        return self.send("STATUS=" + text)

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1", *(("STATUS=" + status,) if status else ()))

    def reloading(self) -> bool:
        return self.send("RELOADING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class NotifyListener:
    """The service manager's end (benchmarks, tests): a datagram socket whose :attr:`address` a child gets
    as ``$NOTIFY_SOCKET``. Bound at ``path``, or as an abstract socket when the path is too long for
    ``sun_path``; SO_PASSCRED on, so every message carries the sender's pid (``NotifyAccess=main``)."""

    def __init__(self, path: Path) -> None:
        self.path: Path | None = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        if len(os.fsencode(path)) < 100:
            self.sock.bind(str(path))
            self.address = str(path)
        else:
            name = f"gatewayd-notify-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
            self.path = None
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

    def receive(self, timeout: float | None) -> tuple[dict[str, str], int] | None:
        """The next message's assignments and sender pid, or None after ``timeout`` s."""
        ucred = struct.calcsize("3i")
        self.sock.settimeout(timeout)
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(ucred))
        except TimeoutError:
            return None
        pid = 0
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[:ucred])[0]
        fields = dict(line.partition("=")[::2] for line in data.decode(errors="replace").split("\n") if line)
        return fields, pid

    def close(self) -> None:
        self.sock.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
