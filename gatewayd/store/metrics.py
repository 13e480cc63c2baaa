"""Counters and latencies of the recording store, plus an event hook for exporters and tests.

``StoreMetrics.snapshot()`` gives plain numbers (for ``gatewayd status`` or a metrics exporter); the
store's ``listener`` (if any) is called with every :class:`StoreEvent` as it happens, on the thread that
caused it — a listener must be quick and must not call back into the store.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoreEvent:
    """``name`` is one of: opened, synced (``samples`` on disk), part_uploaded (``part``), closed,
    object_complete (``latency`` s since stop), confirmed (``latency``), outcome (``ok``), attempt_failed
    (``error``, ``transient``), spool_error (``error``), recovered."""

    name: str
    recording_id: str
    fields: Mapping[str, object] = field(default_factory=dict)


Listener = Callable[[StoreEvent], None]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 100]) of a non-empty list."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    rank = max(1, -(-len(s) * q // 100))
    return s[int(rank) - 1]


class StoreMetrics:
    """Thread-safe counters; latencies keep the last ``window`` values."""

    def __init__(self, window: int = 1000) -> None:
        self._lock = threading.Lock()
        self.recordings_opened = 0
        self.uploads_confirmed = 0
        self.upload_attempts_failed = 0
        self.outcomes_failed = 0
        self.spool_errors = 0
        self.frames_dropped = 0
        self.recovered = 0
        self._complete: deque[float] = deque(maxlen=window)  # stop -> object complete
        self._confirmed: deque[float] = deque(maxlen=window)  # stop -> confirmed (ACL, HEAD)
        self.backlog: Callable[[], tuple[int, int]] = lambda: (0, 0)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def latency(self, kind: str, seconds: float) -> None:
        with self._lock:
            (self._complete if kind == "complete" else self._confirmed).append(seconds)

    def latencies(self, kind: str = "complete") -> list[float]:
        with self._lock:
            return list(self._complete if kind == "complete" else self._confirmed)

    def snapshot(self) -> dict[str, float | int | None]:
        count, size = self.backlog()
        with self._lock:
            complete = list(self._complete)
            confirmed = list(self._confirmed)
            out: dict[str, float | int | None] = {
                "recordings_opened": self.recordings_opened,
                "uploads_confirmed": self.uploads_confirmed,
                "upload_attempts_failed": self.upload_attempts_failed,
                "outcomes_failed": self.outcomes_failed,
                "spool_errors": self.spool_errors,
                "frames_dropped": self.frames_dropped,
                "recovered": self.recovered,
            }
        out["spool_backlog_count"] = count
        out["spool_backlog_bytes"] = size
        for kind, vals in (("complete", complete), ("confirmed", confirmed)):
            out[f"upload_{kind}_p50_s"] = percentile(vals, 50) if vals else None
            out[f"upload_{kind}_p95_s"] = percentile(vals, 95) if vals else None
        return out
