"""``gatewayd bench soak``: the daemon's memory with N live calls for M minutes.

Starts ``gatewayd run`` as a subprocess (READY=1 over a NOTIFY_SOCKET of its own) on a config with one
SIP trunk and one emulated voice modem per modem call (drivers/emulators/modem.py on real ptys), the
bundled voicemail handler in-process and the buckets in a SeaweedFS S3 server of its own (``--bucket
local``: local directories). It keeps ``--calls`` calls going at once, replacing each as it ends: SIPp
places ``--sip-calls`` of them (the pjsua2 wheel takes 4 calls per process), the emulated modems' callers
the rest. Every call leaves a message: it waits through the greeting and the beep, speaks, presses '#',
hears its message played back from the bucket and is hung up on. The daemon runs with MALLOC_ARENA_MAX=2,
as systemd/gatewayd.service sets it (``--malloc-arena-max``).

The daemon's RSS (``/proc/PID/status`` VmRSS) is sampled every second. Reported (``--json``): peak RSS
(VmHWM, which covers start-up too), RSS growth over the last 80 % of the run (the least-squares trend
of the samples there, times that span: a leak grows steadily, call churn only wobbles), calls completed
(by line kind and outcome, from the daemon's metrics), frames dropped, uploads, live calls sampled.

Bounds: peak RSS <= 120 MB and RSS growth <= 5 MB; and the load must have been there (at least as many
calls completed as --calls). Exit status 1 when one is missed, 2 when the benchmark cannot run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gatewayd.testing.notify import NotifySocket
from gatewayd.testing.ports import free_port

log = logging.getLogger(__name__)

PEAK_BOUND_MB = 120.0
GROWTH_BOUND_MB = 5.0
GROWTH_WINDOW = 0.8  # the last 80 % of the run
SIP_CALLS = 4  # PJSUA_MAX_CALLS of the pjsua2 wheel
MALLOC_ARENA_MAX = 2  # what systemd/gatewayd.service sets (0: not set)
PROMPTS = "soak-prompts"
MESSAGES = "soak-messages"


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "soak", help=f"N live calls for M minutes: peak RSS <= {PEAK_BOUND_MB:g} MB, growth <= {GROWTH_BOUND_MB:g} MB",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=16, help="calls kept live at once (default 16)")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the run (default 10)")
    p.add_argument("--sip-calls", type=int, default=SIP_CALLS,
                   help=f"how many of the calls come over SIP (default {SIP_CALLS}: the pjsua2 wheel's limit); "
                        "the rest come through emulated modems")
    p.add_argument("--bucket", choices=("s3", "local"), default="s3",
                   help="recordings and prompts in a SeaweedFS S3 server (default) or local directories")
    p.add_argument("--malloc-arena-max", type=int, default=MALLOC_ARENA_MAX, metavar="N",
                   help=f"MALLOC_ARENA_MAX for the daemon, as systemd/gatewayd.service sets it (default "
                        f"{MALLOC_ARENA_MAX}; 0: glibc's default)")
    p.add_argument("--peak-bound-mb", type=float, default=PEAK_BOUND_MB)
    p.add_argument("--growth-bound-mb", type=float, default=GROWTH_BOUND_MB)
    p.add_argument("--log-level", default="warning", help="the daemon's log level (default warning)")
    p.add_argument("--workdir", type=Path, help="keep the config, logs and buckets here (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


# ------------------------------------------------------------------ the figures (pure)
@dataclass
class SoakResult:
    calls: int
    sip_calls: int
    modem_calls: int
    minutes: float
    bucket: str
    malloc_arena_max: int
    peak_rss_mb: float = 0.0  # VmHWM at the end of the run
    max_sampled_rss_mb: float = 0.0
    rss_start_mb: float = 0.0  # first sample once the calls were placed
    rss_at_20pct_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_growth_mb: float = 0.0  # trend over the last 80 %
    rss_samples: int = 0
    rss_series_mb: list[tuple[int, float]] = field(default_factory=list)  # (s, MB) every 30 s
    calls_completed: int = 0
    calls_by_line_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    modem_caller_failures: int = 0
    sipp_failed_calls: int = 0
    frames_dropped: int = 0
    uploads: int = 0
    recordings: dict[str, int] = field(default_factory=dict)
    live_calls: dict[str, float] = field(default_factory=dict)
    daemon_exit: int | None = None
    loadavg: str = ""
    bounds: dict[str, float] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)
    ok: bool = False


def rss_growth(samples: Sequence[tuple[float, float]], window: float = GROWTH_WINDOW) -> tuple[float, float]:
    """(RSS at the start of the window, growth over it) from ``(time, MB)`` samples: the least-squares line
    through the samples of the last ``window`` of the run, its slope times the window's span."""
    if len(samples) < 2:
        return (samples[0][1] if samples else 0.0), 0.0
    t_first, t_last = samples[0][0], samples[-1][0]
    start = t_last - window * (t_last - t_first)
    pts = [(t, v) for t, v in samples if t >= start]
    if len(pts) < 2:
        return pts[-1][1], 0.0
    t = np.array([p[0] for p in pts])
    v = np.array([p[1] for p in pts])
    slope, intercept = np.polyfit(t - t[0], v, 1)
    return float(intercept), float(slope * (t[-1] - t[0]))


def summarise(res: SoakResult, rss: Sequence[tuple[float, float]], peak_mb: float) -> SoakResult:
    """Fill in the RSS figures and decide the bounds."""
    res.rss_samples = len(rss)
    if rss:
        res.rss_start_mb = round(rss[0][1], 1)
        res.rss_end_mb = round(rss[-1][1], 1)
        res.max_sampled_rss_mb = round(max(v for _, v in rss), 1)
    at20, growth = rss_growth(rss)
    res.rss_at_20pct_mb = round(at20, 1)
    res.rss_growth_mb = round(growth, 2)
    res.peak_rss_mb = round(max(peak_mb, res.max_sampled_rss_mb), 1)
    peak_bound, growth_bound = res.bounds["peak_rss_mb"], res.bounds["rss_growth_mb"]
    res.missed = []
    if res.peak_rss_mb > peak_bound:
        res.missed.append(f"peak RSS {res.peak_rss_mb} MB > {peak_bound:g} MB")
    if res.rss_growth_mb > growth_bound:
        res.missed.append(f"RSS growth {res.rss_growth_mb} MB > {growth_bound:g} MB over the last 80 %")
    if res.rss_samples < 10:
        res.missed.append(f"only {res.rss_samples} RSS samples: the run is void")
    if res.calls_completed < res.calls:
        res.missed.append(f"only {res.calls_completed} calls completed (< {res.calls}): the load was not there")
    res.ok = not res.missed
    return res


def status_mb(pid: int, key: str) -> float:
    """``VmRSS``/``VmHWM``... of ``/proc/PID/status`` in MB (1 MB = 2^20 bytes)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/{pid}/status")


# ------------------------------------------------------------------ the run
class Daemon:
    """``python -m gatewayd run`` with a NOTIFY_SOCKET of ours (gatewayd.testing.notify.NotifySocket), read all
    along (as systemd does: a notification socket nobody reads fills up, and the daemon's notifications
    are dropped)."""

    def __init__(self, work: Path, config: dict[str, Any], env: dict[str, str]) -> None:
        self.config = work / "gatewayd.yaml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log = work / "gatewayd.log"
        self.notify = NotifySocket(work / "notify.sock")
        with self.log.open("wb") as logf:
            self.proc = subprocess.Popen([sys.executable, "-m", "gatewayd", "run", "--config", str(self.config)],
                                         env={**env, "NOTIFY_SOCKET": self.notify.address}, cwd=work,
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float) -> None:
        self.notify.wait_ready(self.proc, timeout, self.log_tail)

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.notify.close()
        return self.proc.returncode


def _daemon_env(extra: dict[str, str], arena: int) -> dict[str, str]:
    from gatewayd.testing.daemon_env import daemon_env

    env = daemon_env(**extra)
    env.pop("MALLOC_ARENA_MAX", None)
    if arena > 0:
        env["MALLOC_ARENA_MAX"] = str(arena)
    return env


@contextlib.contextmanager
def _buckets(args: argparse.Namespace, work: Path,
             objects: dict[str, bytes]) -> Iterator[tuple[list[dict[str, Any]], dict[str, str]]]:
    """The buckets' config entries and the daemon's extra environment (S3 credentials)."""
    if args.bucket == "local":
        root = work / "buckets"
        for key, data in objects.items():
            path = root / PROMPTS / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (root / MESSAGES).mkdir(parents=True, exist_ok=True)
        yield [{"type": "local", "name": b, "root": str(root)} for b in (PROMPTS, MESSAGES)], {}
        return
    from gatewayd.testing.seaweedfs import SeaweedS3

    with SeaweedS3(work / "seaweedfs") as s3:
        client = s3.client()
        for b in (PROMPTS, MESSAGES):
            s3.create_bucket(b)
        for key, data in objects.items():
            client.put_object(Bucket=PROMPTS, Key=key, Body=data)
        yield [{"type": "s3", "name": b, "endpoint_url": s3.endpoint_url, "region": s3.credentials.region,
                "addressing_style": "path"} for b in (PROMPTS, MESSAGES)], s3.env()


class ModemSlot(threading.Thread):
    """One emulated modem whose caller leaves message after message until told to stop."""

    def __init__(self, k: int, emu: Any, prompt_samples: int, speech: np.ndarray, stop: threading.Event) -> None:
        super().__init__(name=f"soak-modem{k}", daemon=True)
        from gatewayd.testing.voicemail_callers import ModemCaller

        self.k = k
        self.caller = ModemCaller(emu, prompt_samples, poll_s=0.05)
        self.speech = speech
        self.stop_event = stop
        self.completed = 0
        self.failures = 0

    def run(self) -> None:
        from gatewayd.testing.voicemail_callers import CallerTimeout

        while not self.stop_event.is_set():
            try:
                self.caller.call(self.speech, number=f"555{self.k:04d}", keep_audio=False, timeout=90.0)
                self.completed += 1
            except CallerTimeout as e:
                self.failures += 1
                log.warning("modem%d: %s", self.k, e)
                with self.caller.emu.lock:
                    self.caller.emu.device.abandon()
                    if self.caller.emu.device.off_hook:
                        self.caller.emu.device.hang_up("cpc")
                self.stop_event.wait(5.0)
            self.stop_event.wait(0.3)  # the line re-initialises after a call


def _sipp(work: Path, target: str, calls: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["sipp", target, "-sf", str(work / "sipp" / "voicemail.xml"), "-s", "voicemail", "-i", "127.0.0.1",
         "-p", str(free_port()), "-mp", str(free_port() & ~1), "-l", str(calls), "-m", "1000000",
         "-r", "10", "-nostdin", "-trace_err", "-error_file", str(work / "sipp-errors.log"),
         "-trace_stat", "-stf", str(work / "sipp-stats.csv"), "-fd", "5"],
        cwd=work / "sipp", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")


def _sipp_failed(work: Path) -> int:
    """FailedCall(C) of SIPp's last statistics line."""
    path = work / "sipp-stats.csv"
    if not path.exists():
        return -1
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    if len(lines) < 2:
        return -1
    head = lines[0].split(";")
    last = lines[-1].split(";")
    with contextlib.suppress(ValueError, IndexError):
        return int(last[head.index("FailedCall(C)")])
    return -1


def soak(args: argparse.Namespace, work: Path) -> SoakResult:
    from drivers.emulators.modem import FakeV253Modem
    from gatewayd.testing.prometheus import Metrics, scrape
    from gatewayd.testing.voicemail_callers import (
        MESSAGE_TEXT,
        message_audio,
        speak,
        voicemail_config,
        voicemail_prompts,
        write_sipp_files,
    )
    from media.frame import SAMPLE_RATE

    n_sip = min(args.sip_calls, args.calls)
    n_modem = args.calls - n_sip
    res = SoakResult(calls=args.calls, sip_calls=n_sip, modem_calls=n_modem, minutes=args.minutes,
                     bucket=args.bucket, malloc_arena_max=args.malloc_arena_max,
                     bounds={"peak_rss_mb": args.peak_bound_mb, "rss_growth_mb": args.growth_bound_mb})
    prompts = voicemail_prompts()
    speech = speak(MESSAGE_TEXT)
    msg = message_audio(speech, lead_s=prompts.samples / SAMPLE_RATE + 1.5, tail_s=1.0)
    write_sipp_files(work / "sipp", msg, bye_timeout_ms=90_000, pause_before_ms=300)
    emus = [FakeV253Modem("usr5637", link=work / f"ttyMODEM{k}", ring_on_s=0.3, ring_off_s=0.5).start()
            for k in range(n_modem)]
    stop = threading.Event()
    slots: list[ModemSlot] = []
    sipp: subprocess.Popen[str] | None = None
    try:
        with _buckets(args, work, prompts.objects()) as (bucket_entries, bucket_env):
            sip_port = free_port()
            metrics = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
            config = voicemail_config(
                work / "state", sip_port=sip_port, modems=[e.path for e in emus], buckets=bucket_entries,
                environment={"VOICEMAIL_PROMPTS_BUCKET": PROMPTS, "VOICEMAIL_BUCKET": MESSAGES,
                             "VOICEMAIL_PREFIX": "soak"},
                metrics=metrics, log_level=args.log_level)
            daemon = Daemon(work, config, _daemon_env(bucket_env, args.malloc_arena_max))
            try:
                daemon.wait_ready(60.0)
                pid = daemon.proc.pid
                if n_sip:
                    sipp = _sipp(work, f"127.0.0.1:{sip_port}", n_sip)
                slots = [ModemSlot(k, e, prompts.samples, speech, stop) for k, e in enumerate(emus)]
                for s in slots:
                    s.start()
                t0 = time.monotonic()
                end = t0 + args.minutes * 60
                rss: list[tuple[float, float]] = []
                live: list[float] = []
                next_scrape = t0 + 30.0  # past the ramp-up
                while (now := time.monotonic()) < end:
                    if daemon.proc.poll() is not None:
                        raise RuntimeError(f"gatewayd exited with {daemon.proc.returncode}:\n{daemon.log_tail()}")
                    rss.append((now - t0, status_mb(pid, "VmRSS")))
                    if now >= next_scrape:
                        with contextlib.suppress(OSError):
                            live.append(scrape(metrics).value("gatewayd_live_calls"))
                        next_scrape += 5.0
                    time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
                peak = status_mb(pid, "VmHWM")
                res.loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
                stop.set()
                if sipp is not None:
                    sipp.send_signal(signal.SIGUSR1)  # SIPp: place no more calls, quit when the live ones end
                for s in slots:
                    s.join(120.0)
                if sipp is not None:
                    try:
                        sipp.wait(120.0)
                    except subprocess.TimeoutExpired:
                        sipp.kill()
                        sipp.wait()
                    res.sipp_failed_calls = _sipp_failed(work)
                time.sleep(2.0)  # the last HANGUPs are counted
                m: Metrics = scrape(metrics)
            finally:
                res.daemon_exit = daemon.stop()
    finally:
        stop.set()
        if sipp is not None and sipp.poll() is None:
            sipp.kill()
            sipp.wait()
        for e in emus:
            e.stop()
    by_kind: dict[str, dict[str, int]] = {}
    for (line, outcome), v in m.by("gatewayd_calls_total", "line", "outcome").items():
        kind = "sip" if line == "trunk" else "modem"
        by_kind.setdefault(kind, {})
        by_kind[kind][outcome] = by_kind[kind].get(outcome, 0) + int(v)
    res.calls_by_line_kind = by_kind
    res.calls_completed = sum(d.get("completed", 0) for d in by_kind.values())
    res.modem_caller_failures = sum(s.failures for s in slots)
    res.frames_dropped = int(m.value("gatewayd_frames_dropped_total"))
    res.uploads = int(m.value("gatewayd_upload_latency_seconds_count"))
    res.recordings = {k[0]: int(v) for k, v in m.by("gatewayd_recordings_total", "outcome").items()}
    if live:
        res.live_calls = {"min": min(live), "median": float(np.median(live)), "max": max(live), "scrapes": len(live)}
    res.rss_series_mb = [(round(t), round(v, 1)) for t, v in rss[::30]]
    return summarise(res, rss, peak)


def run(args: argparse.Namespace) -> int:
    if args.calls < 1 or args.minutes <= 0 or args.sip_calls < 0:
        sys.stderr.write("gatewayd bench soak: --calls and --minutes must be positive\n")
        return 2
    try:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            res = soak(args, args.workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="gatewayd-soak-") as tmp:
                res = soak(args, Path(tmp))
    except (RuntimeError, OSError) as e:
        sys.stderr.write(f"gatewayd bench soak: cannot run: {e}\n")
        return 2
    if args.json:
        sys.stdout.write(json.dumps(asdict(res), indent=2) + "\n")
    else:
        sys.stdout.write(
            f"soak: {res.calls} live calls ({res.sip_calls} SIP, {res.modem_calls} modem) for {res.minutes:g} min, "
            f"buckets {res.bucket}, MALLOC_ARENA_MAX {res.malloc_arena_max or 'unset'}\n"
            f"  RSS peak {res.peak_rss_mb} MB (bound {res.bounds['peak_rss_mb']:g}), growth over the last 80 % "
            f"{res.rss_growth_mb} MB (bound {res.bounds['rss_growth_mb']:g}); start {res.rss_start_mb}, "
            f"end {res.rss_end_mb} MB\n"
            f"  calls completed {res.calls_completed} {res.calls_by_line_kind}, frames dropped {res.frames_dropped}, "
            f"uploads {res.uploads}, live calls {res.live_calls}\n"
            f"  {'OK' if res.ok else 'BOUND MISSED: ' + '; '.join(res.missed)}\n")
    return 0 if res.ok else 1
