"""The process-wide pjsua2 endpoint and the one thread that talks to it.

pjsua2 is a per-process singleton. :class:`SipEndpoint` owns it: one thread creates the library
(``threadCnt=0``, ``mainThreadOnly``, null sound device, 8 kHz clock), loops around
``libHandleEvents`` and runs the commands that other threads queue with :meth:`SipEndpoint.submit` or
:meth:`SipEndpoint.call`. No other thread calls into pjsua2; the media callbacks of each call's
:class:`~drivers.sip.port.LegPort` run on pjmedia's clock thread and touch only the frame they are given.

Several trunks (:class:`~drivers.sip.line.SipLine`) share the endpoint: each attaches with
:meth:`SipEndpoint.acquire` and detaches with :meth:`SipEndpoint.release`; the library is destroyed when
the last one leaves (and can be created again later in the same process).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import pjsua2 as pj

from drivers.line import LineError

log = logging.getLogger(__name__)

T = TypeVar("T")

CLOCK_RATE = 8000
PTIME_MS = 20
POLL_MS = 10  # libHandleEvents timeout: the latency of queued commands
TICK_S = 0.2  # period of the lines' housekeeping (RTP timeout, dial timeout, reaping)
MAX_CALLS = 128
#: pjsua2 log levels -> Python logging levels
_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}


def _quiet_pjlib() -> None:
    """Silence pjlib's console logging before ``libCreate`` (it prints to stdout at level 5 by default)."""
    try:
        lib = ctypes.CDLL(pj._pjsua2.__file__)
        lib.pj_log_set_level(0)
    except (OSError, AttributeError):  # a build without the symbol: only a few start-up lines on stdout
        pass


def _max_calls() -> int:
    """Concurrent calls pjsua accepts (``uaConfig.maxCalls`` clamped to the build's PJSUA_MAX_CALLS)."""
    try:
        lib = ctypes.CDLL(pj._pjsua2.__file__)
        return int(lib.pjsua_call_get_max_count())
    except (OSError, AttributeError):
        return MAX_CALLS


class _LogWriter(pj.LogWriter):  # type: ignore[misc]
    """Routes pjsua2's own log into Python logging (levels <= 3 only; see ``log_level``)."""

    def write(self, entry: Any) -> None:
        with contextlib.suppress(Exception):  # never raise into C++
            log.log(_LEVELS.get(entry.level, logging.DEBUG), "pjsua: %s", entry.msg.rstrip())


class SipEndpoint:
    """The pjsua2 library on its own thread. Use :meth:`acquire` / :meth:`release`."""

    _lock = threading.Lock()
    _instance: SipEndpoint | None = None

    def __init__(self, log_level: int = 2) -> None:
        self._log_level = log_level
        self._q: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._tickers: list[Callable[[float], None]] = []
        self._refs = 0
        self._stopping = False
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.ep: Any = None
        self._writer: _LogWriter | None = None
        self._thread = threading.Thread(target=self._run, name="pjsua2", daemon=True)
        self._codec_order: tuple[str, ...] = ()
        self.max_calls = 0  # known once the library is up

    # ------------------------------------------------------------------ lifetime (any thread)
    @classmethod
    def acquire(cls) -> SipEndpoint:
        """Attach to the process-wide endpoint, starting it on first use."""
        with cls._lock:
            inst = cls._instance
            if inst is None:
                inst = cls()
                inst._thread.start()
                inst._ready.wait(30)
                if inst._error is not None or not inst._ready.is_set():
                    err = inst._error
                    inst._stopping = True
                    raise LineError(f"pjsua2 did not start: {err}")
                cls._instance = inst
            inst._refs += 1
            return inst

    def release(self) -> None:
        """Detach; the last one out stops the thread and destroys the library."""
        with SipEndpoint._lock:
            self._refs -= 1
            if self._refs > 0:
                return
            SipEndpoint._instance = None
            self._stopping = True
            if threading.current_thread() is not self._thread:
                self._thread.join(30)  # under the lock: a new endpoint waits for this one to be gone
                if self._thread.is_alive():
                    log.error("pjsua2 thread did not stop within 30 s")

    @property
    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the pjsua2 thread soon (within ~10 ms). Never blocks."""
        if not self._thread.is_alive():
            raise LineError("the SIP endpoint is not running")
        self._q.put(fn)

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """Run ``fn`` on the pjsua2 thread and return its result (or raise its exception)."""
        if self.on_thread:
            return fn()
        fut: Future[T] = Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)

        self.submit(run)
        return fut.result(timeout)

    # ------------------------------------------------------------------ pjsua2 thread only
    def add_ticker(self, fn: Callable[[float], None]) -> None:
        self._tickers.append(fn)

    def remove_ticker(self, fn: Callable[[float], None]) -> None:
        if fn in self._tickers:
            self._tickers.remove(fn)

    def set_codecs(self, order: tuple[str, ...]) -> None:
        """Enable exactly these G.711 codecs, in this order of preference (endpoint-wide in pjsua2)."""
        if order == self._codec_order:
            return
        prio = {f"{name}/8000/1": 255 - i for i, name in enumerate(order)}
        for c in self.ep.codecEnum2():
            self.ep.codecSetPriority(c.codecId, prio.get(c.codecId, 0))
        self._codec_order = order

    def _init_lib(self) -> None:
        _quiet_pjlib()
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.uaConfig.userAgent = "gatewayd"
        cfg.medConfig.clockRate = CLOCK_RATE
        cfg.medConfig.sndClockRate = CLOCK_RATE
        cfg.medConfig.channelCount = 1
        cfg.medConfig.audioFramePtime = PTIME_MS
        cfg.medConfig.ptime = PTIME_MS
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0  # no echo canceller: the daemon does its own audio processing
        cfg.medConfig.maxMediaPorts = 2 * MAX_CALLS + 8
        cfg.medConfig.threadCnt = 1  # RTP receive on a C thread of its own (no Python there)
        self._writer = _LogWriter()
        # Endpoint.libDestroy() deletes the writer: hand it over to C++, or Python deletes it a second
        # time when this object goes away (heap corruption that crashes the process later, anywhere)
        self._writer.__disown__()
        cfg.logConfig.writer = self._writer
        cfg.logConfig.level = self._log_level
        cfg.logConfig.consoleLevel = self._log_level
        cfg.logConfig.msgLogging = False
        cfg.logConfig.decor = 0
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()
        ep.libStart()
        self.ep = ep
        self.max_calls = _max_calls()
        if self.max_calls < MAX_CALLS:
            log.warning("this pjsua2 build takes at most %d concurrent calls per process (compiled-in "
                        "PJSUA_MAX_CALLS); build pjproject with a larger PJSUA_MAX_CALLS for more", self.max_calls)
        self.set_codecs(("PCMU", "PCMA"))

    def _run(self) -> None:
        try:
            self._init_lib()
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        next_tick = time.monotonic() + TICK_S
        try:
            while True:
                self._drain()
                if self._stopping:
                    break
                self.ep.libHandleEvents(POLL_MS)
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + TICK_S
                    for tick in list(self._tickers):
                        try:
                            tick(now)
                        except Exception:
                            log.exception("SIP housekeeping failed")
        finally:
            self._destroy_lib()

    def _drain(self) -> None:
        while True:
            try:
                fn = self._q.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            except Exception:
                log.exception("SIP command failed")

    def _destroy_lib(self) -> None:
        ep = self.ep
        try:
            # give BYEs and un-REGISTERs a moment to leave
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                ep.libHandleEvents(POLL_MS)
                self._drain()
            ep.libDestroy()
        except Exception:
            log.exception("pjsua2 shutdown failed")
        self.ep = None
        self._writer = None  # deleted by libDestroy
