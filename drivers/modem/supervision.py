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
mean |sample| of the frame). :class:`ToneSupervisor` adapts a call-progress tone detector
(``media.progress.ProgressDetector``: ``process(frame) -> [event(kind, start_pts, end_pts)]``) so that
busy / congestion / dial tone after the caller hung up ends the call, cut where the tone began. When the
modem's own tone report (``DLE b`` / ``DLE d``, which comes about a second into the tone) ends the call
first, :meth:`ToneSupervisor.tone_onset` tells the driver where that tone began in the audio::

    ModemLine(config, supervisors=[lambda: ToneSupervisor(lambda: ProgressDetector("us"))])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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

    def tone_onset(self, reason: str) -> int | None:
        """Where the signal behind ``reason`` began in the audio fed so far (pts), if this supervisor
        can tell; the driver cuts there when the modem's own report ends the call first."""
        ...


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

    def tone_onset(self, reason: str) -> int | None:
        return None  # silence has no tone (its start is reported with its own Disconnect)


class ToneEvent(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def start_pts(self) -> int: ...

    @property
    def end_pts(self) -> int | None: ...


class ToneDetector(Protocol):
    def process(self, frame: AudioFrame) -> Iterable[ToneEvent]: ...

    def tone_onset(self, kind: str) -> int | None: ...


# detector kind → RemoteHangup.reason (ringback and SIT do not mean the caller has gone)
TONE_REASONS: Mapping[str, str] = {"busy": "busy-tone", "congestion": "reorder-tone", "dial": "dial-tone",
                                   "unobtainable": "dial-tone"}


class ToneSupervisor:
    """Decide on the first disconnect tone the detector reports; the tail starts where the tone began."""

    def __init__(self, make_detector: Callable[[], ToneDetector],
                 reasons: Mapping[str, str] = TONE_REASONS) -> None:
        self._make = make_detector
        self.reasons = dict(reasons)
        self._det = make_detector()
        self._decided = False

    def feed(self, frame: AudioFrame) -> Disconnect | None:
        if self._decided:
            return None
        for ev in self._det.process(frame):
            reason = self.reasons.get(str(ev.kind))
            if reason is not None and ev.end_pts is None:
                self._decided = True
                return Disconnect(reason, ev.start_pts)
        return None

    def reset(self) -> None:
        self._det = self._make()  # a gap in the audio: cadence history does not carry over
        self._decided = False

    def tone_onset(self, reason: str) -> int | None:
        """Where the tone behind ``reason`` (e.g. "dial-tone" from the modem's ``DLE d``) began in the
        audio fed so far (pts), if the detector can tell; else None."""
        found = [p for kind, r in self.reasons.items() if r == reason for p in [self._det.tone_onset(kind)]
                 if p is not None]
        return min(found) if found else None
