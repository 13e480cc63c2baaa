"""Line supervision on the received audio: deciding, in software, that the far end has gone.

A voice modem's own detectors (``DLE l/b/d/s/q``) are not always there or not always right, so the
driver also runs supervisors over each 20 ms frame it receives. A supervisor is a small stateful
object (sans-IO, fed frames that carry their pts):

* ``feed(frame)`` returns a :class:`Disconnect` when it decides the call is over, with the pts where
  the disconnect signal *began* (start of the silence, of the busy tone ...), so that a recording
  in progress is cut there;
* ``reset()`` is called at every gap in the received audio (the modem is half duplex: nothing is
  received while it transmits) and at the start of each call.

:class:`SilenceSupervisor` is the software silence timer (levels as SPEC.md's SilenceThreshold:
mean |sample| of the frame). A call-progress tone detector plugs in the same way
(``media.progress``, see :func:`progress_supervisor`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from media.frame import SAMPLE_RATE, AudioFrame
from media.levels import mean_abs


@dataclass(frozen=True)
class Disconnect:
    reason: str  # RemoteHangup.reason: "silence", "busy-tone", "dial-tone", ...
    tail_start_pts: int | None  # where the signal began (None: cut at the end)


class LineSupervisor(Protocol):
    def feed(self, frame: AudioFrame) -> Disconnect | None: ...

    def reset(self) -> None: ...


class SilenceSupervisor:
    """Decide "silence" once the received audio stays below ``threshold`` for ``timeout_s``."""

    def __init__(self, timeout_s: float, threshold: float = 200.0, sample_rate: int = SAMPLE_RATE) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.threshold = threshold
        self.timeout_samples = round(timeout_s * sample_rate)
        self._start: int | None = None
        self._decided = False

    @property
    def silence_start(self) -> int | None:
        return self._start

    def feed(self, frame: AudioFrame) -> Disconnect | None:
        if self._decided:  # one decision per stretch of audio
            return None
        if mean_abs(frame.samples) >= self.threshold:
            self._start = None
            return None
        if self._start is None:
            self._start = frame.pts
        if frame.end_pts - self._start >= self.timeout_samples:
            self._decided = True
            return Disconnect("silence", self._start)
        return None

    def reset(self) -> None:
        self._start = None
        self._decided = False
