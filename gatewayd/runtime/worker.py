"""The media worker: one thread that runs every leg's receive pipeline.

Drivers wake it with a leg whose receive ring has a frame; the control loop hands it commands
(callables), which run between frames in the order they were queued. Nothing here blocks except the
wait for the next item. ``heartbeat`` is the monotonic time of the last loop iteration; the daemon
feeds the systemd watchdog only while it is fresh.

With an :class:`Activity` attached (simulations and tests on a virtual clock), every queued item is
counted until it has run, so an emulated line can wait for the whole system to be idle before it
produces the next frame.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gatewayd.runtime.legmedia import LegMedia

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 0.25


class Activity:
    """Counts outstanding work across threads; ``wait_idle`` returns when none is left."""

    def __init__(self) -> None:
        self._n = 0
        self._cond = threading.Condition()
        self.loop_touched = False  # set when work went to the control loop (see VirtualClock.settle)

    def begin(self, loop: bool = False) -> None:
        with self._cond:
            self._n += 1
            if loop:
                self.loop_touched = True

    def end(self) -> None:
        with self._cond:
            self._n -= 1
            if self._n <= 0:
                self._n = 0
                self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._n == 0, timeout)

    @property
    def busy(self) -> int:
        return self._n


class MediaWorker:
    def __init__(self, activity: Activity | None = None, name: str = "media-worker") -> None:
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._activity = activity
        self.activity = activity
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stopping = False
        self.heartbeat = time.monotonic()
        self.frames = 0
        self.errors = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping = True
        self._q.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self, leg: LegMedia) -> None:
        if self._activity is not None:
            self._activity.begin()
        self._q.put(leg)

    def submit(self, fn: Callable[[], None]) -> None:
        if self._activity is not None:
            self._activity.begin()
        self._q.put(fn)

    def _run(self) -> None:
        from gatewayd.runtime.legmedia import LegMedia

        _name_native_thread(self._thread.name)

        get = self._q.get
        while True:
            try:
                item = get(timeout=HEARTBEAT_INTERVAL)
            except queue.Empty:
                self.heartbeat = time.monotonic()
                if self._stopping:
                    return
                continue
            self.heartbeat = time.monotonic()
            if item is None:
                if self._stopping:
                    return
                continue
            try:
                if isinstance(item, LegMedia):
                    self.frames += 1
                    item.process_next()
                else:
                    item()
            except Exception:  # a bug in one leg's pipeline must not stop the others
                self.errors += 1
                log.exception("media worker: error while processing")
            finally:
                if self._activity is not None:
                    self._activity.end()


def _name_native_thread(name: str) -> None:
    """The OS-level name of the calling thread (Linux: what ``top -H``/``ps -L`` show, and how tests find
    the media worker's thread id); best effort, 15 bytes at most."""
    with contextlib.suppress(OSError), open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as f:
        f.write(name[:15])
