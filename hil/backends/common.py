"""Pieces the HIL backends share: the event log, the far end's SIP media port, far-end recordings."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from hil.simulator import Recording, SimEvent
from media.dtmf import DtmfDetector
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples, to_int16
from media.levels import dbm0_to_rms, rms

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


class FarEndPort:
    """The far end's FramePort: plays queued audio (then silence or a looping tone), keeps what it hears
    (in each :meth:`add_recorder` list) and, given ``on_digit(digit, leg_seconds)``, detects the digits the
    DUT sends in-band. Called on the SIP media thread every 20 ms."""

    def __init__(self, on_digit: Callable[[str, float], None] | None = None) -> None:
        self._cv = threading.Condition()
        self._queue: deque[Samples] = deque()
        self._head = 0  # samples of the first queued chunk already sent
        self._loop: Samples | None = None  # sent over and over once the queue is empty
        self._loop_pos = 0
        self._recorders: list[list[Samples]] = []
        self._detector = DtmfDetector() if on_digit is not None else None
        self._on_digit = on_digit
        self.sent = 0  # samples sent

    # ---- FramePort
    def push_rx(self, frame: AudioFrame) -> None:
        with self._cv:
            for rec in self._recorders:
                rec.append(frame.samples.copy())
        if self._detector is not None and self._on_digit is not None:
            for ev in self._detector.process(frame):
                self._on_digit(ev.digit, ev.start / SAMPLE_RATE)

    def pull_tx(self, pts: int) -> Samples:
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        with self._cv:
            filled = 0
            while filled < FRAME_SAMPLES and self._queue:
                head = self._queue[0]
                take = min(FRAME_SAMPLES - filled, len(head) - self._head)
                out[filled:filled + take] = head[self._head:self._head + take]
                filled += take
                self._head += take
                if self._head >= len(head):
                    self._queue.popleft()
                    self._head = 0
            if filled < FRAME_SAMPLES and self._loop is not None and len(self._loop):
                while filled < FRAME_SAMPLES:
                    take = min(FRAME_SAMPLES - filled, len(self._loop) - self._loop_pos)
                    out[filled:filled + take] = self._loop[self._loop_pos:self._loop_pos + take]
                    filled += take
                    self._loop_pos = (self._loop_pos + take) % len(self._loop)
            self.sent += FRAME_SAMPLES
            self._cv.notify_all()
        return out

    @property
    def tx_active(self) -> bool:
        return True

    # ---- controller side
    def enqueue(self, samples: Samples) -> None:
        with self._cv:
            if len(samples):
                self._queue.append(np.asarray(samples, dtype=np.int16))

    def set_loop(self, samples: Samples | None) -> None:
        with self._cv:
            self._queue.clear()
            self._head = 0
            self._loop = samples
            self._loop_pos = 0

    def wait_drained(self, until_gone: Callable[[], bool], timeout: float) -> bool:
        """Block until everything queued was sent (True), the call ended or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._queue:
                left = deadline - time.monotonic()
                if left <= 0 or until_gone():
                    return False
                self._cv.wait(min(left, 0.1))
        return True

    def wait_sent(self, samples: int, until_gone: Callable[[], bool], timeout: float) -> bool:
        target = self.sent + samples
        deadline = time.monotonic() + timeout
        with self._cv:
            while self.sent < target:
                left = deadline - time.monotonic()
                if left <= 0 or until_gone():
                    return False
                self._cv.wait(min(left, 0.1))
        return True

    def add_recorder(self) -> list[Samples]:
        rec: list[Samples] = []
        with self._cv:
            self._recorders.append(rec)
        return rec

    def remove_recorder(self, rec: list[Samples]) -> None:
        with self._cv, contextlib.suppress(ValueError):
            self._recorders.remove(rec)


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
    r = rms(audio)
    if level_dbm0 is None or r <= 0:
        return np.asarray(audio, dtype=np.int16)
    return to_int16(np.asarray(audio, dtype=np.float64) * (dbm0_to_rms(level_dbm0) / r))


def seconds(samples: Samples) -> float:
    return len(samples) / SAMPLE_RATE


