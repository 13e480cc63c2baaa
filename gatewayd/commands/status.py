"""``gatewayd status``: live calls, lines and their state, counters (from the running daemon)."""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

from gatewayd.config import ConfigError, load_config

EX_UNAVAILABLE = 69


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("status", help="show live calls, lines and counters")
    p.add_argument("--config", "-c", default="/etc/gatewayd/gatewayd.yaml", help="configuration file")
    p.add_argument("--socket", help="status socket (default: from the configuration)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def query(path: str, timeout: float = 5.0) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"status\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    result: dict[str, Any] = json.loads(buf)
    return result


def render(st: dict[str, Any]) -> str:
    out = [f"gatewayd {st['version']} pid {st['pid']}, up {st['uptime_s']:.0f} s, "
           f"media worker heartbeat {st['media_worker_heartbeat_age_s']:.2f} s ago"]
    out.append("lines:")
    out += [f"  {ln['name']:<16} {ln['kind']:<8} {ln['state']}" for ln in st["lines"]]
    out.append(f"calls: {len(st['calls'])}")
    for c in st["calls"]:
        legs = ", ".join(f"{lg['direction']} {lg['line']} {'answered' if lg['answered'] else 'ringing'}"
                         for lg in c["legs"])
        out.append(f"  {c['transaction_id']} {c['application']} {c['age_s']:.0f} s: {legs}")
    out.append("counters: " + ", ".join(f"{k}={v}" for k, v in st["counters"].items()))
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    path = args.socket
    if path is None:
        try:
            from gatewayd.daemon import find_status_socket

            path = str(find_status_socket(load_config(args.config)))
        except ConfigError as e:
            sys.stderr.write(f"{e}\n")
            return 78
    try:
        st = query(path)
    except OSError as e:
        sys.stderr.write(f"gatewayd is not running (no answer on {path}: {e.strerror or e})\n")
        return EX_UNAVAILABLE
    sys.stdout.write(json.dumps(st, indent=2) + "\n" if args.json else render(st))
    return 0
