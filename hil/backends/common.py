"""Pieces the emulator backends share: the event log, far-end recordings, DUT line settings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from hil.simulator import Recording, SimEvent
from media.frame import SAMPLE_RATE, Samples
from media.levels import dbm0_to_rms

QUICK_RING = (0.5, 1.5)  # a short cadence whose gap still separates ring cycles (both drivers)


class Unsupported(Exception):
    """The backend cannot do this (scenarios check ``capabilities`` first)."""


class EventLog:
    """Timestamped :class:`SimEvent` list (seconds since the last reset), with waiting."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[SimEvent] = []
        self.t0 = time.monotonic()
        self.t0_wall = time.time()

    def reset(self) -> None:
        with self._cond:
            self._items.clear()
            self.t0 = time.monotonic()
            self.t0_wall = time.time()

    def add(self, kind: str, detail: str = "") -> SimEvent:
        with self._cond:
            ev = SimEvent(time.monotonic() - self.t0, kind, detail)
            self._items.append(ev)
            self._cond.notify_all()
            return ev

    def items(self) -> list[SimEvent]:
        with self._cond:
            return list(self._items)

    def __iter__(self) -> Iterator[SimEvent]:
        return iter(self.items())

    def wait(self, pred: Callable[[list[SimEvent]], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: pred(self._items), timeout)

    def wall(self, ev: SimEvent) -> float:
        """``time.time()`` of an event."""
        return self.t0_wall + ev.t


class HookWatcher:
    """Polls a hook-state getter and logs off-hook / on-hook edges (for devices that only expose state)."""

    def __init__(self, log: EventLog, off_hook: Callable[[], bool], period: float = 0.01) -> None:
        self.log = log
        self._get = off_hook
        self._period = period
        self._stop = threading.Event()
        self._state = False
        self._thread = threading.Thread(target=self._run, name="hil-hook-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                now = bool(self._get())
            except Exception:  # the device is being swapped
                continue
            if now != self._state:
                self._state = now
                self.log.add("off-hook" if now else "on-hook")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


class HeardAudio:
    """What the far end heard in each :meth:`record_far_end` context (kept for ``--results``)."""

    def __init__(self) -> None:
        self.clips: list[Samples] = []

    @contextmanager
    def recording(self, snapshot: Callable[[], Samples]) -> Iterator[Recording]:
        rec = Recording(started_at=time.monotonic())
        before = len(snapshot())
        try:
            yield rec
        finally:
            rec.samples = np.array(snapshot()[before:], dtype=np.int16)
            self.clips.append(rec.samples)


def scaled(audio: Samples, level_dbm0: float | None) -> Samples:
    """``audio`` scaled so that its RMS is ``level_dbm0`` (None: as it is)."""
    x = np.asarray(audio, dtype=np.float64)
    if level_dbm0 is None or not len(x):
        return np.asarray(audio, dtype=np.int16)
    rms = float(np.sqrt(np.mean(x * x)))
    if rms == 0:
        return np.asarray(audio, dtype=np.int16)
    y = x * (dbm0_to_rms(level_dbm0) / rms)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def seconds(samples: Samples) -> float:
    return len(samples) / SAMPLE_RATE


