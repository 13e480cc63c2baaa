"""``gatewayd bench startup``: start-up to READY=1 of ``gatewayd run``, over N cold starts.

Each run starts ``python -m gatewayd run --config FILE`` as systemd would (``$NOTIFY_SOCKET`` pointing at
a socket this benchmark owns), times the process start to the READY=1 datagram from that process, then
stops it with SIGTERM and requires exit code 0. Without ``--config`` the configuration is the embedded
default's shape in a scratch directory: one SIP line on a free loopback port, the bundled voicemail
handler in-process, local-directory buckets, no metrics listener. Prints p50 / p95 / max in seconds;
exits 1 when p95 is over the bound (2 s: issue 8's start-up budget) or a run fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from gatewayd.sdnotify import NotifyListener

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


class StartupFailed(RuntimeError):
    pass


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("startup", help="gatewayd run start-up to READY=1, p50/p95")
    p.add_argument("-n", type=int, default=10, help="cold starts (default 10)")
    p.add_argument("--bound-p95", type=float, default=2.0, metavar="S", help="fail when p95 is above (default 2 s)")
    p.add_argument("--config", type=Path, help="configuration to start (default: a scratch SIP-line config)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100): the smallest value with at least q % of them at or below."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarize(times: Sequence[float], bound_p95: float) -> tuple[dict[str, Any], bool]:
    """The figures for ``times`` (seconds to READY) and whether p95 is within ``bound_p95``."""
    p95 = percentile(times, 95)
    figures = {"n": len(times), "p50_s": round(percentile(times, 50), 3), "p95_s": round(p95, 3),
               "min_s": round(min(times), 3), "max_s": round(max(times), 3), "bound_p95_s": bound_p95}
    return figures, p95 <= bound_p95


def scratch_config(workdir: Path) -> Path:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    cfg = {"state_dir": str(workdir / "state"),
           "lines": [{"name": "sip", "type": "sip", "bind_address": "127.0.0.1", "port": port,
                      "allowed_peers": ["127.0.0.1/32"]}],
           "applications": [{"name": "voicemail", "handler": "python:gatewayd.handlers.voicemail:handler"}],
           "rules": [{"name": "every-call", "trigger_type": "Line", "trigger_value": "*",
                      "target_applications": [{"application": "voicemail"}]}],
           "buckets": [{"name": "gatewayd-recordings", "type": "local", "root": str(workdir / "buckets")}],
           "metrics": {"address": None}}
    path = workdir / "gatewayd.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def time_to_ready(config: Path, workdir: Path) -> float:
    """One cold start: seconds from spawning ``gatewayd run`` to its READY=1; then a clean SIGTERM stop."""
    from gatewayd.testing.daemon_env import daemon_env

    listener = NotifyListener(workdir / "notify.sock")
    env = daemon_env(NOTIFY_SOCKET=listener.address)
    log = workdir / "gatewayd.stderr"
    try:
        with open(log, "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "gatewayd", "run", "--config", str(config)], env=env,
                                    stdin=subprocess.DEVNULL, stdout=err, stderr=err)
            try:
                elapsed = _wait_ready(listener, proc, t0)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    rc = proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    rc = -signal.SIGKILL
    finally:
        listener.close()
    if elapsed is None or rc != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise StartupFailed(f"gatewayd run {'never sent READY=1' if elapsed is None else 'stopped'} "
                            f"(exit {rc}):\n{tail}")
    return elapsed


def _wait_ready(listener: NotifyListener, proc: subprocess.Popen[bytes], t0: float) -> float | None:
    deadline = t0 + READY_TIMEOUT_S
    while time.perf_counter() < deadline:
        got = listener.receive(0.05)
        if got is not None:
            fields, pid = got
            if fields.get("READY") == "1" and pid == proc.pid:
                return time.perf_counter() - t0
        elif proc.poll() is not None:
            return None
    return None


def measure(n: int, config: Path | None) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory(prefix="gatewayd-bench-startup-") as tmp:
        for i in range(n):
            workdir = Path(tmp) / f"run{i}"
            workdir.mkdir()
            times.append(time_to_ready(config or scratch_config(workdir), workdir))
    return times


def run(args: argparse.Namespace) -> int:
    if args.n < 1:
        sys.stderr.write("-n must be at least 1\n")
        return 2
    try:
        times = measure(args.n, args.config)
    except StartupFailed as e:
        sys.stderr.write(f"{e}\n")
        return 1
    figures, ok = summarize(times, args.bound_p95)
    figures["loadavg_1m"] = os.getloadavg()[0]
    if args.json:
        sys.stdout.write(json.dumps(figures) + "\n")
    else:
        sys.stdout.write("gatewayd run start-up to READY=1: " + ", ".join(f"{k} {v}" for k, v in figures.items())
                         + "\n")
    return 0 if ok else 1
