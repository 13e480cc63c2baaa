"""A virtual clock for simulations: time advances only when the emulated line says so.

The engine's timers (handler timeouts, the 30 s ring timeout, dial timeouts) are scheduled on it and
fire, on the control loop, when the virtual exchange advances past them. ``pace`` is what the
exchange calls before each 20 ms tick: it waits until the daemon has nothing in flight (no handler
invocation, no line event or media result on its way, no frame waiting in the media worker), then
moves the clock. Handlers therefore look instantaneous in media time, and a scenario gives the same
transcript on any machine.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
from collections.abc import Callable

from gatewayd.runtime.worker import Activity

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 60.0  # a handler that takes longer than this in real time stalls the simulation


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    def __init__(self, loop: asyncio.AbstractEventLoop, activity: Activity) -> None:
        self.loop = loop
        self.activity = activity
        self.t = 0.0
        self._timers: list[tuple[float, int, _Handle, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def now(self) -> float:
        return self.t

    def call_at(self, when: float, fn: Callable[[], None]) -> _Handle:
        h = _Handle()
        with self._lock:
            heapq.heappush(self._timers, (when, next(self._seq), h, fn))
        return h

    def _fire(self, h: _Handle, fn: Callable[[], None]) -> None:
        try:
            if not h.cancelled:
                fn()
        finally:
            self.activity.end()

    def advance(self, t: float) -> None:
        """Move to ``t`` and run (on the loop) every timer that is due."""
        self.t = max(self.t, t)
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > self.t:
                    return
                _, _, h, fn = heapq.heappop(self._timers)
            self.activity.begin()
            self.loop.call_soon_threadsafe(self._fire, h, fn)

    def settle(self) -> None:
        """Wait until nothing is in flight (see module docstring)."""
        while True:
            if not self.activity.wait_idle(IDLE_TIMEOUT_S):
                log.warning("simulation: still busy after %.0f s of real time; going on", IDLE_TIMEOUT_S)
                return
            for _ in range(3):  # let callbacks already queued on the loop run, and what they schedule
                done = threading.Event()
                self.loop.call_soon_threadsafe(done.set)
                if not done.wait(IDLE_TIMEOUT_S):
                    return
            if self.activity.busy == 0:
                return

    def pace(self, t: float) -> None:
        self.settle()
        self.advance(t)
        self.settle()
