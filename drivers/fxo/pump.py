"""The FXO driver's media thread: sound-card periods in, 20 ms leg frames out, and back.

:class:`MediaPump` drains the capture ring the PortAudio callback fills, converts the card's rate to
8 kHz with a streaming resampler when needed, and cuts 160-sample frames. What happens to a frame
depends on the line's state, which only the control thread changes (by commands applied at frame
boundaries):

* a call is up: ``port.push_rx(frame)``, then ``port.pull_tx(pts)`` into the playout ring; the
  supervision detector and the silence timer watch the received frames;
* the caller-ID window is open (on-hook, between rings): frames feed the caller-ID decoder;
* otherwise the audio is dropped (the card keeps running: it owns the clock).

Findings go to the control thread through ``post`` (a non-blocking queue put). Nothing here blocks
except the wait for the next period.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from drivers.fxo.config import FxoConfig
from drivers.fxo.seams import CallerIdDecoder, CallerIdRecord, SupervisionDetector, ToneHit
from drivers.line import FramePort
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples
from media.levels import mean_abs
from media.ring import FrameRing
from media.stream_resampler import StreamResampler

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ commands (control → media)
@dataclass(frozen=True)
class Attach:
    leg_id: str
    port: FramePort


@dataclass(frozen=True)
class Detach:
    pass


@dataclass(frozen=True)
class ListenCallerId:
    on: bool


# ------------------------------------------------------------------ findings (media → control)
@dataclass(frozen=True)
class CallerIdFound:
    record: CallerIdRecord


@dataclass(frozen=True)
class ToneFound:
    leg_id: str
    hit: ToneHit


@dataclass(frozen=True)
class SilenceFound:
    leg_id: str
    start_pts: int


@dataclass(frozen=True)
class AudioStalled:
    seconds: float


@dataclass(frozen=True)
class AudioFlowing:
    pass


Finding = CallerIdFound | ToneFound | SilenceFound | AudioStalled | AudioFlowing


@dataclass
class PumpCounters:
    frames: int = 0  # 8 kHz frames cut from the capture
    rx_frames: int = 0  # pushed to a port
    port_errors: int = 0  # exceptions raised by push_rx / pull_tx
    bad_tx: int = 0  # pull_tx returned something that was not 160 int16 samples


class MediaPump:
    def __init__(self, config: FxoConfig, capture: FrameRing[bytes], playout: FrameRing[bytes],
                 wake: threading.Event, post: Callable[[Finding], None],
                 cid_decoder: CallerIdDecoder | None = None,
                 supervision: SupervisionDetector | None = None,
                 last_callback: Callable[[], float] | None = None,
                 set_playout_active: Callable[[bool], None] | None = None) -> None:
        self.cfg = config
        self.capture, self.playout, self.wake, self.post = capture, playout, wake, post
        self.cid_decoder, self.supervision = cid_decoder, supervision
        self._last_callback = last_callback or time.monotonic
        self._set_playout_active = set_playout_active or (lambda _on: None)
        self.counters = PumpCounters()
        self.pts = 0  # leg time of the next frame (read by the control thread)
        self.leg_id: str | None = None
        self._commands: deque[Attach | Detach | ListenCallerId] = deque()
        self._port: FramePort | None = None
        self._cid_on = False
        self._silence_start: int | None = None
        self._silence_reported = False
        self._tone_reported = False
        self._silence_samples = round(config.silence_timeout_s * SAMPLE_RATE)
        rate = config.audio_rate
        self._rs_in = StreamResampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None
        self._rs_out = StreamResampler(SAMPLE_RATE, rate) if rate != SAMPLE_RATE else None
        self._acc = np.zeros(0, dtype=np.int16)
        self._prefill = bytes(2 * (rate // 50))
        self._stalled = False
        self._stop = threading.Event()

    # ------------------------------------------------------------------ control side
    def command(self, cmd: Attach | Detach | ListenCallerId) -> None:
        """Queue a change; it takes effect at the next frame boundary."""
        self._commands.append(cmd)
        self.wake.set()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()

    # ------------------------------------------------------------------ the thread
    def run(self) -> None:
        while not self._stop.is_set():
            self.wake.wait(0.1)
            self.wake.clear()
            self.step()

    def step(self) -> None:
        """One pass: apply commands, convert every captured period, watch for a stalled card."""
        while True:
            self._apply_commands()
            chunk = self.capture.get()
            if chunk is None:
                break
            self._take(np.frombuffer(chunk, dtype="<i2"))
        self._apply_commands()
        idle = time.monotonic() - self._last_callback()
        if idle > self.cfg.audio_stall_s and not self._stalled:
            self._stalled = True
            self.post(AudioStalled(idle))
        elif idle <= self.cfg.audio_stall_s and self._stalled:
            self._stalled = False
            self.post(AudioFlowing())

    def _apply_commands(self) -> None:
        while self._commands:
            cmd = self._commands.popleft()
            if isinstance(cmd, Attach):
                self._port, self.leg_id, self.pts = cmd.port, cmd.leg_id, 0
                self._silence_start, self._silence_reported, self._tone_reported = None, False, False
                if self.supervision is not None:
                    self.supervision.reset()
                self.playout.clear()
                for _ in range(self.cfg.playout_prefill_frames):
                    self.playout.put(self._prefill)
                self._set_playout_active(True)
                self._cid_on = False
            elif isinstance(cmd, Detach):
                self._set_playout_active(False)
                self._port, self.leg_id, self.pts = None, None, 0
                self.playout.clear()
            else:
                self._cid_on = cmd.on and self.cid_decoder is not None
                if self._cid_on and self.cid_decoder is not None:
                    self.cid_decoder.reset()

    def _take(self, card: Samples) -> None:
        x = self._rs_in.process_int16(card) if self._rs_in is not None else card
        acc = np.concatenate([self._acc, x]) if self._acc.size else x
        n = len(acc) // FRAME_SAMPLES * FRAME_SAMPLES
        for i in range(0, n, FRAME_SAMPLES):
            self._frame(np.array(acc[i:i + FRAME_SAMPLES], dtype=np.int16))
        self._acc = np.array(acc[n:], dtype=np.int16)

    def _frame(self, samples: Samples) -> None:
        self.counters.frames += 1
        port = self._port
        if port is not None:
            self._call_frame(port, samples)
        elif self._cid_on and self.cid_decoder is not None:
            record = self.cid_decoder.feed(samples)
            if record is not None:
                self._cid_on = False
                self.post(CallerIdFound(record))

    def _call_frame(self, port: FramePort, samples: Samples) -> None:
        pts = self.pts
        frame = AudioFrame(samples, pts)
        tx: Samples
        try:
            port.push_rx(frame)
            self.counters.rx_frames += 1
            tx = port.pull_tx(pts)
        except Exception:  # a faulty port must not stop the line's clock
            self.counters.port_errors += 1
            if self.counters.port_errors == 1:
                log.exception("%s: the frame port failed; sending silence", self.cfg.name)
            tx = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if not isinstance(tx, np.ndarray) or tx.dtype != np.int16 or tx.shape != (FRAME_SAMPLES,):
            self.counters.bad_tx += 1
            fixed = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            arr = np.asarray(tx).ravel()[:FRAME_SAMPLES]
            fixed[:len(arr)] = np.clip(arr, -32768, 32767)
            tx = fixed
        out = self._rs_out.process_int16(tx) if self._rs_out is not None else tx
        self.playout.put(out.astype("<i2").tobytes())
        leg = self.leg_id or ""
        if self.supervision is not None and not self._tone_reported:
            hit = self.supervision.feed(frame)
            if hit is not None:
                self._tone_reported = True
                self.post(ToneFound(leg, hit))
        if self._silence_samples > 0 and not self._silence_reported:
            if mean_abs(samples) < self.cfg.silence_threshold:
                if self._silence_start is None:
                    self._silence_start = pts
                if pts + FRAME_SAMPLES - self._silence_start >= self._silence_samples:
                    self._silence_reported = True
                    self.post(SilenceFound(leg, self._silence_start))
            else:
                self._silence_start = None
        self.pts = pts + FRAME_SAMPLES
