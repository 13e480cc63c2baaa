"""A free port on loopback for a server a test or benchmark is about to start."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port no socket of ``kind`` (UDP by default; ``socket.SOCK_STREAM`` for TCP) holds on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
