"""What a scenario sees of the device under test, whichever backend runs it: the scripted handler's
transcript, the recordings bucket, the log and the metrics. :class:`hil.dut.Dut` (a local ``gatewayd run``)
and :class:`hil.backends.lab_dut.LabDut` (the Pi on the bench, through the rig file) supply where each
comes from; reading and waiting is the same for both.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gatewayd.testing.prometheus import Metrics, scrape_url
from media.frame import Samples
from media.wav import read_wav


class DutView:
    #: how often :meth:`wait_until` polls (seconds)
    poll_s = 0.05

    def __init__(self) -> None:
        self._transcript_offset = 0
        self._recordings_before: set[Path] = set()

    # ------------------------------------------------------------------ what each backend supplies
    def _transcript_path(self) -> Path:
        raise NotImplementedError

    def _has_transcript(self) -> bool:
        return True

    def _all_recordings(self) -> list[Path]:
        raise NotImplementedError

    def _metrics_url(self) -> str:
        raise NotImplementedError

    def log_text(self) -> str:
        """The DUT's log since :meth:`mark_view`."""
        raise NotImplementedError

    def _check_alive(self) -> None:
        """Raise ``AssertionError`` when the DUT is known to be gone (waiting on it is pointless)."""

    # ------------------------------------------------------------------ scenario start
    def mark_view(self) -> None:
        """Transcript and recordings count from here."""
        if self._has_transcript():
            path = self._transcript_path()
            self._transcript_offset = path.stat().st_size if path.exists() else 0
        self._recordings_before = set(self._all_recordings())

    # ------------------------------------------------------------------ the handler's transcript
    def transcript(self) -> list[dict[str, Any]]:
        """Every invocation since the mark: ``{"t", "event", "response"}``."""
        path = self._transcript_path()
        if not path.exists():
            return []
        with open(path, "rb") as f:
            f.seek(self._transcript_offset)
            data = f.read()
        out = []
        for line in data.decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError):  # a line still being written (or through a network mount)
                out.append(json.loads(line))
        return out

    def events(self, kind: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
        out = []
        for entry in self.transcript():
            ev = entry["event"]
            if kind is not None and ev.get("InvocationEventType") != kind:
                continue
            if action is not None and (ev.get("ActionData") or {}).get("Type") != action:
                continue
            out.append(entry)
        return out

    def wait_event(self, kind: str, timeout: float, action: str | None = None, count: int = 1) -> dict[str, Any]:
        """The ``count``-th invocation of ``kind`` (and action type) since the mark."""
        if not self.wait_until(lambda: len(self.events(kind, action)) >= count, timeout):
            events = [e["event"] for e in self.transcript()]
            kinds = [(ev.get("InvocationEventType"), (ev.get("ActionData") or {}).get("Type")) for ev in events]
            raise AssertionError(f"no {kind} {action or ''} x{count} from the DUT within {timeout} s; transcript: "
                                 f"{kinds}\nlog:\n{self.log_text()[-3000:]}")
        return self.events(kind, action)[count - 1]

    def wait_until(self, pred: Callable[[], bool], timeout: float, step: float | None = None) -> bool:
        end = time.monotonic() + timeout
        while True:
            if pred():
                return True
            if time.monotonic() >= end:
                return False
            self._check_alive()
            time.sleep(self.poll_s if step is None else step)

    # ------------------------------------------------------------------ recordings
    def recordings(self) -> list[Path]:
        """WAV files that appeared in the recordings bucket since the mark."""
        return [p for p in self._all_recordings() if p not in self._recordings_before]

    def wait_recordings(self, n: int, timeout: float) -> list[Path]:
        if not self.wait_until(lambda: len(self.recordings()) >= n, timeout, step=max(self.poll_s, 0.1)):
            raise AssertionError(f"{len(self.recordings())} recordings from the DUT, expected {n}; log:\n"
                                 f"{self.log_text()[-3000:]}")
        return self.recordings()

    @staticmethod
    def read_recording(path: Path) -> Samples:
        return read_wav(path)

    # ------------------------------------------------------------------ log and metrics
    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def metrics(self) -> Metrics:
        """The DUT's Prometheus metrics, parsed."""
        return scrape_url(self._metrics_url())

    def metric(self, prefix: str, **labels: str) -> float:
        """Sum of the samples named ``prefix`` whose labels include ``labels``."""
        return self.metrics().value(prefix, **labels)
