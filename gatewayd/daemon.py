"""The daemon: lines → media worker → SMA sessions → handler invokers and the recording store.

Lifecycle (Type=notify): configuration checked before anything starts (exit 78 on error); the store
runs start-up recovery of spooled recordings; lines start; READY=1 once every line is up, with
STATUS= showing live calls; WATCHDOG=1 only while the media worker's heartbeat is fresh. SIGHUP
reloads routing, applications and buckets (a bad new config is refused and the old one stays; calls
in progress keep the application they started with). SIGTERM/SIGINT: STOPPING=1, new calls are
refused, live calls are hung up, recordings in progress are finished and uploaded, then exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

from drivers.line import Line, LineError
from gatewayd import factories
from gatewayd.config import Config, ConfigError, load_config
from gatewayd.invokers import Invoker
from gatewayd.metrics import MetricsServer, Registry
from gatewayd.runtime.calls import CallManager, Services
from gatewayd.runtime.prompts import PromptLoader
from gatewayd.runtime.routing import Router
from gatewayd.runtime.worker import MediaWorker
from gatewayd.sdnotify import Notifier
from gatewayd.store import RecordingStore, StoreEvent

log = logging.getLogger(__name__)

HEARTBEAT_STALE_S = 2.0  # the media worker beats at least every 0.25 s
STOP_TIMEOUT_S = 45.0  # below the unit's TimeoutStopSec (60 s)
STORE_DRAIN_S = 5.0  # then what is not uploaded stays spooled for the next start
WATCHDOG_MARGIN = 0.8  # ping at 80 % of half the watchdog timeout: late wake-ups stay within the half
STATUS_POLL_S = 0.5
RETIRE_POLL_S = 0.5


class DaemonMetrics:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.calls = registry.counter("gatewayd_calls_total", "Calls by line and outcome.", ["line", "outcome"])
        self.handler_latency = registry.histogram("gatewayd_handler_latency_seconds",
                                                  "Handler invocation latency.", ["application"])
        self.handler_errors = registry.counter("gatewayd_handler_errors_total",
                                               "Handler invocations that failed.", ["application"])
        self.upload_latency = registry.histogram(
            "gatewayd_upload_latency_seconds", "Recording stop to object confirmed in its bucket.",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0))
        self.recordings = registry.counter("gatewayd_recordings_total", "Recordings by outcome.", ["outcome"])
        self.upload_failures = registry.counter("gatewayd_upload_attempts_failed_total",
                                                "Upload attempts that failed (they are retried).")

    def store_event(self, ev: StoreEvent) -> None:
        """The recording store's listener (called on store threads; only arithmetic here)."""
        if ev.name == "confirmed" and isinstance(ev.fields.get("latency"), int | float):
            self.upload_latency.observe(float(ev.fields["latency"]))  # type: ignore[arg-type]
        elif ev.name == "outcome":
            self.recordings.inc(outcome="uploaded" if ev.fields.get("ok") else "failed")
        elif ev.name == "attempt_failed":
            self.upload_failures.inc()


class Daemon:
    def __init__(self, cfg: Config, config_path: Path | None = None, notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.registry = Registry()
        self.metrics = DaemonMetrics(self.registry)
        self.worker = MediaWorker()
        self.lines: dict[str, Line] = {}
        self.mgr: CallManager | None = None
        self.store: RecordingStore | None = None
        self.invokers = factories.InvokerCache()
        self._retiring: set[Invoker] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._metrics_server: MetricsServer | None = None
        self._status_server: asyncio.AbstractServer | None = None
        self.status_path: Path | None = None
        self.started_at = time.time()

    # ------------------------------------------------------------------ run
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.worker.start()
        assert self.cfg.state_dir is not None
        self.cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = factories.build_store(self.cfg, listener=self.metrics.store_event)
        recovered = await asyncio.to_thread(self.store.start)
        if recovered:
            log.info("start-up recovery: %d spooled recording(s) being uploaded", len(recovered))
        prompts = PromptLoader(factories.fetcher(self.store), self.cfg.media.tts_command)
        services = Services(invoker_for=self.invokers.get, prompts=prompts,
                            store=self.store, media=factories.media_factories(self.cfg),
                            max_record_s=int(self.cfg.media.record_max_s))
        self.lines = {lc.name: factories.build_line(lc, self.cfg) for lc in self.cfg.lines}
        self.mgr = CallManager(loop, self.lines, Router(self.cfg), services, self.worker, metrics=self.metrics,
                               dtmf_inband=factories.dtmf_inband(self.cfg))
        self._register_gauges()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        try:
            for name, line in self.lines.items():
                try:
                    await asyncio.to_thread(line.start, self.mgr.sink_for(name))
                except LineError as e:
                    log.error("line %s did not start: %s", name, e, extra={"LINE": name})
                    self.mgr.line_state[name] = "down"
                else:
                    self.mgr.line_state.setdefault(name, "up")
            await self._start_servers()
            self.notifier.ready(self._status_text())
            log.info("gatewayd ready: %s", self._status_text())
            tasks = [loop.create_task(self._watchdog()), loop.create_task(self._status_updates())]
            await self._stop.wait()
            for t in tasks:
                t.cancel()
            self.notifier.stopping("finishing calls and uploads")
            log.info("stopping: finishing calls and uploading recordings")
            if not await self.mgr.drain(STOP_TIMEOUT_S):
                log.error("stop timed out with calls or uploads pending; spooled recordings upload at next start")
        finally:
            await self._shutdown()
        return 0

    async def _shutdown(self) -> None:
        for name, line in self.lines.items():
            try:
                await asyncio.to_thread(line.stop)
            except Exception:
                log.exception("line %s did not stop cleanly", name)
        if self.store is not None:
            await asyncio.to_thread(self.store.stop, STORE_DRAIN_S)
        await self.invokers.close()
        for inv in list(self._retiring):
            inv.close()
        self.worker.stop()
        if self._metrics_server is not None:
            self._metrics_server.stop()
        if self._status_server is not None:
            self._status_server.close()
            if self.status_path is not None:
                with contextlib.suppress(OSError):
                    self.status_path.unlink()
        self.notifier.close()

    def request_stop(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------------ reload
    async def reload(self) -> bool:
        """SIGHUP: routing, applications and buckets from the config file; lines need a restart."""
        self.notifier.reloading()
        try:
            if self.config_path is None:
                raise ConfigError([])
            new = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as e:
            for p in e.problems:
                log.error("reload refused: %s", p)
            self.notifier.ready(self._status_text())
            return False
        if [lc for lc in new.lines] != [lc for lc in self.cfg.lines]:
            log.warning("reload: changes to lines take effect at the next restart")
        self.cfg = new
        assert self.mgr is not None
        self.mgr.router = Router(new)
        for inv in self.invokers.retain(new.applications):
            self._retire(inv)
        if self.store is not None:
            self.store.config = factories.store_config(new)
        log.info("reloaded %s: %d rules, %d applications", self.config_path, len(new.rules), len(new.applications))
        self.notifier.ready(self._status_text())
        return True

    def _retire(self, inv: Invoker) -> None:
        """Close an invoker dropped by a reload once no call in progress uses it any more."""
        async def close_when_unused() -> None:
            try:
                while self.mgr is not None and any(c.invoker is inv for c in self.mgr.calls.values()):
                    await asyncio.sleep(RETIRE_POLL_S)
            finally:
                self._retiring.discard(inv)
                inv.close()
                log.info("reload: %s retired (no call in progress uses it)", inv.target)
        self._retiring.add(inv)
        task = asyncio.get_running_loop().create_task(close_when_unused())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ watchdog, status, metrics
    def heartbeat_fresh(self) -> bool:
        return self.worker.alive and time.monotonic() - self.worker.heartbeat < HEARTBEAT_STALE_S

    async def _watchdog(self) -> None:
        """WATCHDOG=1 at most every half timeout (on a fixed schedule, with a margin for scheduling jitter),
        only while the media worker's heartbeat is fresh."""
        interval = self.notifier.watchdog_interval
        if interval is None:
            return
        period = interval * WATCHDOG_MARGIN
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at = max(next_at + period, loop.time())
            await asyncio.sleep(next_at - loop.time())
            if self.heartbeat_fresh():
                self.notifier.watchdog()
            else:
                log.error("media worker heartbeat is stale (%.1f s): not feeding the watchdog",
                          time.monotonic() - self.worker.heartbeat)

    async def _status_updates(self) -> None:
        """STATUS= whenever the live-call or line count changes (polled: cheap, and never on the media path)."""
        last = self._status_text()
        while True:
            await asyncio.sleep(STATUS_POLL_S)
            text = self._status_text()
            if text != last:
                self.notifier.status(text)
                last = text

    def _status_text(self) -> str:
        n = len(self.mgr.calls) if self.mgr else 0
        up = sum(1 for s in (self.mgr.line_state.values() if self.mgr else ()) if s == "up")
        return f"{n} live call{'s' if n != 1 else ''}; {up}/{len(self.lines)} lines up"

    def status(self) -> dict[str, Any]:
        assert self.mgr is not None
        return {
            "version": __import__("gatewayd").__version__, "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started_at, 1),
            "lines": [{"name": n, "kind": getattr(ln, "kind", "?"), "state": self.mgr.line_state.get(n, "unknown")}
                      for n, ln in self.lines.items()],
            "calls": self.mgr.status(),
            "counters": {"frames_processed": self.worker.frames, "media_errors": self.worker.errors,
                         "rx_frames_dropped": self.mgr.frames_dropped(),
                         "spool_backlog": self.store.backlog()[0] if self.store is not None else 0},
            "media_worker_heartbeat_age_s": round(time.monotonic() - self.worker.heartbeat, 3),
        }

    def _register_gauges(self) -> None:
        assert self.mgr is not None
        mgr = self.mgr
        self.registry.gauge("gatewayd_live_calls", "Calls in progress.", read=lambda: len(mgr.calls))
        self.registry.gauge("gatewayd_frames_dropped_total", "Received frames dropped (media worker behind).",
                            read=mgr.frames_dropped)
        self.registry.gauge("gatewayd_spool_backlog", "Recordings waiting for upload.",
                            read=lambda: self.store.backlog()[0] if self.store is not None else 0)
        self.registry.gauge("gatewayd_media_worker_heartbeat_age_seconds", "Seconds since the media worker ran.",
                            read=lambda: time.monotonic() - self.worker.heartbeat)

    async def _start_servers(self) -> None:
        addr = self.cfg.metrics.address
        if addr:
            host, _, port = addr.rpartition(":")
            self._metrics_server = MetricsServer(self.registry, host.strip("[]") or "127.0.0.1", int(port))
            self._metrics_server.start()
            log.info("metrics on http://%s:%d/metrics", *self._metrics_server.address)
        self.status_path = status_socket_path(self.cfg)
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.status_path.unlink()
        self._status_server = await asyncio.start_unix_server(self._serve_status, path=str(self.status_path))
        os.chmod(self.status_path, 0o660)

    async def _serve_status(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readline(), 2.0)
            writer.write(json.dumps(self.status()).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()


STATUS_SOCKET = "gatewayd.sock"
UNIT_RUNTIME_DIR = Path("/run/gatewayd")  # the unit's RuntimeDirectory=gatewayd


def status_socket_path(cfg: Config) -> Path:
    """Where the daemon listens: ``$RUNTIME_DIRECTORY`` (set by systemd), else the state directory."""
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return Path(runtime.split(":")[0]) / STATUS_SOCKET
    assert cfg.state_dir is not None
    return cfg.state_dir / STATUS_SOCKET


def find_status_socket(cfg: Config) -> Path:
    """Where a client finds a running daemon. A shell has no ``$RUNTIME_DIRECTORY`` (and no
    ``$STATE_DIRECTORY``), so the systemd service's socket is looked for in the unit's runtime directory
    too: the first that exists of the daemon's own rule, /run/gatewayd, the state directory."""
    candidates = [status_socket_path(cfg), UNIT_RUNTIME_DIR / STATUS_SOCKET]
    if cfg.state_dir is not None:
        candidates.append(cfg.state_dir / STATUS_SOCKET)
    return next((p for p in candidates if p.exists()), candidates[0])
