"""A leg's media: the FramePort a driver talks to, and the receive pipeline the media worker runs.

Threads:
* driver thread — ``push_rx`` (queue the frame, wake the worker) and ``pull_tx`` (next 160 samples
  of the current playback, mixed with bridged audio). Neither blocks.
* media worker — ``_process``: noise suppression (VoiceFocus), in-band DTMF, digit de-duplication,
  then every active operation (pause, digit collection, recording) and the bridge to the peer leg.
* control loop — the public methods (``start_op``, ``play``, ``end``, ``set_voicefocus`` ...) only
  queue commands, which the worker applies between frames, so the pipeline needs no per-frame locks.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from gatewayd.runtime.ops import Digit, Op, Playback, PlaybackWatch
from gatewayd.runtime.worker import MediaWorker
from media.frame import FRAME_SAMPLES, AudioFrame, Samples
from media.ring import FrameRing

log = logging.getLogger(__name__)

DEDUP_EXACT = 640  # 80 ms: same key seen by two detectors whose start times are both known
DEDUP_APPROX = 2000  # 250 ms: one of them has no start time of its own


class DetectedDigit(Protocol):
    """A key press found in the audio (media.dtmf.DtmfEvent): ``start``/``end`` in pts samples."""

    @property
    def digit(self) -> str: ...

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


class DigitDetector(Protocol):
    def process(self, frame: AudioFrame) -> list[DetectedDigit]: ...


class Suppressor(Protocol):
    def process(self, frame: Samples) -> Samples: ...

    def set_enabled(self, enabled: bool) -> None: ...


class BridgeBuffer:
    """Frames from the peer leg waiting to be sent on this one (worker puts, driver thread gets).

    Keeps about ``target`` frames queued: while it holds more than ``high``, one frame is dropped per
    put (the peer's clock is faster); when it runs dry the driver plays silence (counted) and the
    buffer refills to ``target`` before playing again.
    """

    def __init__(self, target: int = 2, high: int = 5) -> None:
        self.ring: FrameRing[Samples] = FrameRing(high + 1)
        self.target = target
        self.high = high
        self.filling = True
        self.dropped = 0
        self.underruns = 0

    def put(self, samples: Samples) -> None:
        self.ring.put(samples)
        if len(self.ring) > self.high:
            self.ring.get()
            self.dropped += 1

    def get(self) -> Samples | None:
        if self.filling:
            if len(self.ring) < self.target:
                return None
            self.filling = False
        s = self.ring.get()
        if s is None:
            self.underruns += 1
            self.filling = True
        return s


class LegMedia:
    def __init__(self, leg_id: str, worker: MediaWorker, *, detector: DigitDetector | None = None,
                 suppressor_factory: Callable[[], Suppressor] | None = None,
                 on_digit: Callable[[Digit], None] | None = None, rx_capacity: int = 50) -> None:
        self.leg_id = leg_id
        self.worker = worker
        self.rx: FrameRing[AudioFrame] = FrameRing(rx_capacity)
        self._detector = detector
        self._suppressor_factory = suppressor_factory
        self._on_digit = on_digit
        # tx side (driver thread reads these references; others swap them atomically)
        self._play: Playback | None = None
        self.bridge_in: BridgeBuffer | None = None
        self.tx_tap: FrameRing[Samples] | None = None  # copies of what is sent (call recording)
        self.tx_frames = 0
        # worker side
        self._ops: list[Op] = []
        self._vf: Suppressor | None = None
        self._recent_digits: deque[Digit] = deque(maxlen=4)
        self.peer: LegMedia | None = None
        self.last_pts = 0
        self.rx_frames = 0
        self.ended = False

    # ------------------------------------------------------------------ FramePort (driver thread)
    def push_rx(self, frame: AudioFrame) -> None:
        self.rx.put(frame)
        self.worker.wake(self)

    def pull_tx(self, pts: int) -> Samples:
        self.tx_frames += 1
        out: Samples | None = None
        b = self.bridge_in
        if b is not None:
            out = b.get()
        p = self._play
        if p is not None:
            chunk = p.next_frame()
            if chunk is None:
                if self._play is p:
                    self._play = None
            elif out is None:
                out = chunk
            else:
                out = np.clip(out.astype(np.int32) + chunk, -32768, 32767).astype(np.int16)
        if out is None:
            out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        tap = self.tx_tap
        if tap is not None:
            tap.put(out)
        return out

    @property
    def tx_active(self) -> bool:
        p = self._play
        return (p is not None and not p.finished) or self.bridge_in is not None

    @property
    def rx_dropped(self) -> int:
        return self.rx.dropped

    # ------------------------------------------------------------------ worker thread
    def process_next(self) -> None:
        frame = self.rx.get()
        if frame is not None:
            self._process(frame)

    def _process(self, frame: AudioFrame) -> None:
        if self.ended:
            return
        self.rx_frames += 1
        if self._vf is not None:
            frame = AudioFrame(self._vf.process(frame.samples), frame.pts, frame.sample_rate)
        self.last_pts = frame.end_pts
        if self._detector is not None:
            for d in self._detector.process(frame):
                self._digit(Digit(d.digit, d.start, d.end, "inband"))
        for op in self._ops:
            if not op.finished:
                op.on_rx(frame)
        if any(op.finished for op in self._ops):
            self._ops = [op for op in self._ops if not op.finished]
        peer = self.peer
        if peer is not None and peer.bridge_in is not None:
            peer.bridge_in.put(frame.samples)

    def _digit(self, d: Digit) -> None:
        for seen in self._recent_digits:
            if seen.source != d.source and seen.digit == d.digit:
                tol = DEDUP_APPROX if (seen.approx or d.approx) else DEDUP_EXACT
                if abs(d.start_pts - seen.start_pts) <= tol:
                    return
        self._recent_digits.append(d)
        if self._on_digit is not None:
            self._on_digit(d)
        for op in self._ops:
            if not op.finished:
                op.on_digit(d)

    # ------------------------------------------------------------------ control-loop commands
    def start_op(self, op: Op) -> None:
        def apply() -> None:
            if self.ended:
                op.on_end("hangup", None)
            else:
                self._ops.append(op)
        self.worker.submit(apply)

    def cancel_op(self, op: Op, reason: str) -> None:
        def apply() -> None:
            if not op.finished:
                op.on_end(reason, None)
        self.worker.submit(apply)

    def play(self, playback: Playback, terminators: str = "") -> None:
        """Start sending ``playback`` (replacing any current one, which ends as 'replaced')."""
        old = self._play
        if old is not None:
            old.stop("replaced")
        self._play = playback
        if terminators:
            self.start_op(PlaybackWatch(playback, terminators))
        if self.ended:
            playback.complete_now("hangup")

    def stop_playback(self, reason: str) -> None:
        p = self._play
        if p is not None:
            p.stop(reason)

    def inject_digit(self, digit: str, start_pts: int | None, end_pts: int | None, source: str) -> None:
        """An out-of-band digit (RFC 4733, SIP INFO, modem): merged with in-band detections."""
        def apply() -> None:
            if not self.ended:
                self._digit(Digit(digit, self.last_pts if start_pts is None else start_pts, end_pts,
                                  source, approx=start_pts is None))
        self.worker.submit(apply)

    def tap_tx(self) -> FrameRing[Samples]:
        """Start copying what is sent on this leg (for a call recording); returns the ring."""
        if self.tx_tap is None:
            self.tx_tap = FrameRing(25)
        return self.tx_tap

    def command(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the media worker between frames (to change an operation's state)."""
        self.worker.submit(fn)

    def set_voicefocus(self, enabled: bool) -> None:
        def apply() -> None:
            if self._vf is None:
                if not enabled or self._suppressor_factory is None:
                    return
                self._vf = self._suppressor_factory()
            self._vf.set_enabled(enabled)
        self.worker.submit(apply)

    def end(self, reason: str = "hangup", cut_pts: int | None = None) -> None:
        """The leg is gone: every operation ends (recordings are cut at ``cut_pts``), playback stops."""
        def apply() -> None:
            if self.ended:
                return
            self.ended = True
            for op in self._ops:
                if not op.finished:
                    op.on_end(reason, cut_pts)
            self._ops = []
            p = self._play
            if p is not None:
                p.complete_now(reason)
            self.peer = None
        self.worker.submit(apply)

    def bridge(self, peer: LegMedia) -> None:
        """Send this leg's received audio to ``peer`` and the peer's to this leg."""
        def apply() -> None:
            self.bridge_in = BridgeBuffer()
            peer.bridge_in = BridgeBuffer()
            self.peer = peer
            peer.peer = self
        self.worker.submit(apply)

    def unbridge(self) -> None:
        def apply() -> None:
            peer = self.peer
            self.peer = None
            self.bridge_in = None
            if peer is not None:
                peer.peer = None
                peer.bridge_in = None
        self.worker.submit(apply)
