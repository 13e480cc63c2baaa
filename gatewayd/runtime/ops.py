"""Media-time operations on a leg: pause, digit collection, recording, playback.

An operation lives on the media worker thread (except :class:`Playback`, whose samples are pulled
on the driver's thread). It sees every received frame and digit of its leg, in order, and finishes
by calling its ``done`` callback exactly once with a result. Every duration is counted in samples of
the leg's audio, so the same call gives the same answers at any speed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from media.frame import FRAME_SAMPLES, AudioFrame, Samples
from media.levels import mean_abs
from media.ring import FrameRing
from media.tones import ToneGenerator

log = logging.getLogger(__name__)

Done = Callable[[Any], None]

# A terminator's tone is cut from this many samples before its reported start: in-band detection
# places the start within ±5 ms, so 10 ms more never leaves the tone's onset in the file.
TERMINATOR_GUARD = 80


@dataclass(frozen=True)
class Digit:
    digit: str
    start_pts: int
    end_pts: int | None
    source: str
    approx: bool = False  # start_pts is when the digit reached us, not when the tone began


class Op:
    """Base class: override what the operation reacts to. ``finished`` is set by :meth:`finish`."""

    def __init__(self, done: Done) -> None:
        self._done = done
        self.finished = False

    def on_rx(self, frame: AudioFrame) -> None:
        """A received (and noise-suppressed, if enabled) frame."""

    def on_digit(self, d: Digit) -> None:
        """A key press (in-band or out-of-band, de-duplicated)."""

    def on_end(self, reason: str, cut_pts: int | None) -> None:
        """The leg went away (or the op was cancelled). ``cut_pts``: where the caller's audio ended."""
        self.finish({"reason": reason})

    def finish(self, result: Any) -> None:
        if not self.finished:
            self.finished = True
            self._done(result)


class PauseOp(Op):
    def __init__(self, samples: int, done: Done) -> None:
        super().__init__(done)
        self.remaining = samples

    def on_rx(self, frame: AudioFrame) -> None:
        self.remaining -= frame.duration_samples
        if self.remaining <= 0:
            self.finish({"reason": "elapsed"})


@dataclass(frozen=True)
class CollectSpec:
    min_digits: int = 0
    max_digits: int = 128
    terminators: str = "#"
    first_digit_timeout: int = 5 * 8000  # samples to wait for the first digit
    inter_digit_timeout: int = 5 * 8000  # samples between digits
    regex: str | None = None


class CollectOp(Op):
    """Collects digits like PlayAudioAndGetDigits: until a terminator, the maximum or a timeout.

    Result: ``{"digits": str, "reason": "terminator"|"max"|"timeout"|"hangup", "terminator": str|None,
    "valid": bool}``; ``valid`` checks the count against min/max and the regex (full match).
    """

    def __init__(self, spec: CollectSpec, done: Done) -> None:
        super().__init__(done)
        self.spec = spec
        self.digits = ""
        self.wait = spec.first_digit_timeout
        self.started = False

    def _result(self, reason: str, terminator: str | None = None) -> dict[str, Any]:
        s = self.spec
        valid = s.min_digits <= len(self.digits) <= s.max_digits and bool(self.digits or s.min_digits == 0)
        if valid and s.regex:
            try:
                valid = re.fullmatch(s.regex, self.digits) is not None
            except re.error:
                valid = False
        return {"digits": self.digits, "reason": reason, "terminator": terminator, "valid": valid}

    def arm(self, samples: int) -> None:
        """(Re)start the wait for the first digit now (e.g. when the prompt has finished)."""
        if not self.started:
            self.wait = samples

    def on_rx(self, frame: AudioFrame) -> None:
        self.wait -= frame.duration_samples
        if self.wait <= 0:
            self.finish(self._result("timeout"))

    def on_digit(self, d: Digit) -> None:
        self.started = True
        if d.digit in self.spec.terminators:
            self.finish(self._result("terminator", d.digit))
            return
        self.digits += d.digit
        self.wait = self.spec.inter_digit_timeout
        if len(self.digits) >= self.spec.max_digits:
            self.finish(self._result("max"))

    def on_end(self, reason: str, cut_pts: int | None) -> None:
        self.finish(self._result("hangup"))


class ReceiveDigitsOp(Op):
    """ReceiveDigits: keeps listening in the background; each regex match is reported via ``on_match``.

    Digits accumulate; a gap longer than ``inter_digit`` samples ends a group which is matched against
    the regex; ``flush`` samples after the last digit the buffer is cleared (Chime's
    InBetweenDigitsDurationInMilliseconds / FlushDigitsDurationInMilliseconds).
    """

    def __init__(self, regex: str, inter_digit: int, flush: int, on_match: Callable[[str], None], done: Done) -> None:
        super().__init__(done)
        try:
            self.pattern: re.Pattern[str] | None = re.compile(regex)
        except re.error:
            self.pattern = None
        self.inter_digit = inter_digit
        self.flush = flush
        self.on_match = on_match
        self.buffer = ""
        self.since_last = 0

    def _try_match(self) -> None:
        if self.buffer and self.pattern is not None and self.pattern.fullmatch(self.buffer):
            self.on_match(self.buffer)
            self.buffer = ""

    def on_digit(self, d: Digit) -> None:
        self.buffer += d.digit
        self.since_last = 0
        self._try_match()

    def on_rx(self, frame: AudioFrame) -> None:
        if not self.buffer:
            return
        self.since_last += frame.duration_samples
        if self.since_last >= self.flush:
            self.buffer = ""

    def on_end(self, reason: str, cut_pts: int | None) -> None:
        self.finish({"reason": reason})


class RecordingSink(Protocol):
    """Where RecordAudio's samples go (a store ``Recording``). ``put`` never blocks."""

    def put(self, samples: Samples) -> bool: ...

    def finish(self, trim_samples: int = 0, cut_at: int | None = None) -> Any:
        """Stop: keep samples ``[0, cut_at)`` (the terminator tone or disconnect signal after it is
        cut), close and hand over for upload."""


@dataclass(frozen=True)
class RecordSpec:
    max_samples: int
    terminators: str
    silence_threshold: float | None = None  # mean |x| per frame; None = silence detection off
    silence_samples: int = 0


class RecordOp(Op):
    """RecordAudio: writes received audio until the maximum, a terminator, silence or hang-up.

    Result: ``{"reason": "duration"|"terminator"|"silence"|"hangup"|"cancelled", "terminator": str|None,
    "samples": int}`` where ``samples`` is what the file keeps.
    """

    def __init__(self, spec: RecordSpec, sink: RecordingSink, done: Done) -> None:
        super().__init__(done)
        self.spec = spec
        self.sink = sink
        self.start_pts: int | None = None
        self.written = 0
        self.silent_run = 0

    def _stop(self, reason: str, keep: int, terminator: str | None = None) -> None:
        keep = max(0, min(keep, self.written))
        try:
            self.sink.finish(cut_at=keep)
        except Exception:  # the store reports its own failures through its outcome
            log.exception("recording sink failed to finish")
        self.finish({"reason": reason, "terminator": terminator, "samples": keep})

    def on_rx(self, frame: AudioFrame) -> None:
        if self.start_pts is None:
            self.start_pts = frame.pts
        x = frame.samples
        room = self.spec.max_samples - self.written
        if room < len(x):
            x = x[:max(room, 0)]
        if len(x):
            self.sink.put(x)
            self.written += len(x)
        if self.written >= self.spec.max_samples:
            self._stop("duration", self.written)
            return
        if self.spec.silence_threshold is not None:
            if mean_abs(frame.samples) < self.spec.silence_threshold:
                self.silent_run += frame.duration_samples
                if self.silent_run >= self.spec.silence_samples:
                    self._stop("silence", self.written)
            else:
                self.silent_run = 0

    def _rel(self, pts: int | None) -> int:
        if pts is None or self.start_pts is None:
            return self.written
        return pts - self.start_pts

    def on_digit(self, d: Digit) -> None:
        if d.digit in self.spec.terminators:
            self._stop("terminator", self._rel(d.start_pts) - TERMINATOR_GUARD, d.digit)

    def on_end(self, reason: str, cut_pts: int | None) -> None:
        self._stop("hangup" if reason == "hangup" else reason, self._rel(cut_pts))


class Playback:
    """Samples to send on a leg, pulled on the driver's thread 160 at a time.

    Stops at the end (``repeat`` times), or early when :meth:`stop` is called (a terminator digit,
    barge-in, interruption, hang-up). ``done`` is called once, with ``{"reason": "end"|<stop reason>,
    "played": samples}``.
    """

    def __init__(self, samples: Samples, done: Done, repeat: int = 1) -> None:
        self.samples = np.asarray(samples, dtype=np.int16)
        self.repeat = max(1, repeat)
        self.pos = 0
        self.played = 0
        self.loops = 0
        self._stop_reason: str | None = None
        self._done = done
        self._lock = threading.Lock()
        self.finished = False

    def stop(self, reason: str) -> None:
        """Ask to stop at the next frame boundary (any thread)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def _complete(self, reason: str) -> None:
        with self._lock:
            if self.finished:
                return
            self.finished = True
        self._done({"reason": reason, "played": self.played})

    def complete_now(self, reason: str) -> None:
        """Finish from another thread when the driver will pull no more (hang-up)."""
        self._complete(reason)

    def next_frame(self) -> Samples | None:
        """Driver thread: the next 160 samples, or None when finished (the caller plays silence)."""
        if self.finished:
            return None
        if self._stop_reason is not None:
            self._complete(self._stop_reason)
            return None
        n = len(self.samples)
        if n == 0 or self.loops >= self.repeat:
            self._complete("end")
            return None
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while filled < FRAME_SAMPLES and self.loops < self.repeat:
            take = min(FRAME_SAMPLES - filled, n - self.pos)
            out[filled:filled + take] = self.samples[self.pos:self.pos + take]
            filled += take
            self.pos += take
            if self.pos >= n:
                self.pos = 0
                self.loops += 1
        self.played += filled
        return out


class PlaybackWatch(Op):
    """Worker-side companion of a Playback: stops it on a terminator digit or when the leg ends."""

    def __init__(self, playback: Playback, terminators: str) -> None:
        super().__init__(lambda _r: None)
        self.playback = playback
        self.terminators = terminators

    def on_digit(self, d: Digit) -> None:
        if d.digit in self.terminators:
            self.playback.stop(f"terminator:{d.digit}")
            self.finished = True

    def on_rx(self, frame: AudioFrame) -> None:
        if self.playback.finished:
            self.finished = True

    def on_end(self, reason: str, cut_pts: int | None) -> None:
        self.playback.complete_now(reason)
        self.finished = True


class CallRecordingOp(Op):
    """StartCallRecording: what the leg sends us (incoming) and what we send it (outgoing).

    ``track`` BOTH writes stereo (left incoming, right outgoing), INCOMING or OUTGOING mono. Outgoing
    audio comes from ``tx_tap``, filled by the driver's pulls, one frame taken per received frame (the
    two directions line up to within the device's own buffering). While paused, a short marker tone
    then silence is written, as Chime does. Runs until stopped or the leg ends; ``done`` gets
    ``{"reason": ..., "samples": ...}``.
    """

    PAUSE_TONE = 1600  # samples of marker tone at the start of a pause (200 ms)

    def __init__(self, track: str, sink: StereoSink, tx_tap: FrameRing[Samples], done: Done) -> None:
        super().__init__(done)
        self.track = track
        self.sink = sink
        self.tx_tap = tx_tap
        self.written = 0
        self.paused = False
        self._tone_left = 0
        self._tone = ToneGenerator([1000.0], -20.0)

    def pause(self) -> None:
        if not self.paused:
            self.paused = True
            self._tone_left = self.PAUSE_TONE

    def resume(self) -> None:
        self.paused = False

    def on_rx(self, frame: AudioFrame) -> None:
        incoming = frame.samples
        outgoing = self.tx_tap.get()
        if outgoing is None or len(outgoing) != len(incoming):
            outgoing = np.zeros(len(incoming), np.int16)
        if self.paused:
            marker = np.zeros(len(incoming), np.int16)
            n = min(self._tone_left, len(marker))
            if n:
                marker[:n] = self._tone.samples(n)
                self._tone_left -= n
            incoming = outgoing = marker
        if self.track == "BOTH":
            self.sink.put_stereo(incoming, outgoing)
        else:
            self.sink.put(incoming if self.track == "INCOMING" else outgoing)
        self.written += len(incoming)

    def stop(self, reason: str) -> None:
        if not self.finished:
            try:
                self.sink.finish()
            except Exception:
                log.exception("call recording sink failed to finish")
            self.finish({"reason": reason, "samples": self.written})

    def on_end(self, reason: str, cut_pts: int | None) -> None:
        self.stop(reason)


class StereoSink(Protocol):
    def put(self, samples: Samples) -> bool: ...

    def put_stereo(self, incoming: Samples, outgoing: Samples) -> bool: ...

    def finish(self, trim_samples: int = 0, cut_at: int | None = None) -> Any: ...
