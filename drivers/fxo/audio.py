"""The sound card of an FXO line, through PortAudio (pyaudio) in callback mode.

The PortAudio callback runs on PortAudio's thread at the card's period (20 ms). It only copies: the
captured bytes go into the capture ring (overflow drops the oldest period and counts it) and the next
playout period comes out of the playout ring (an empty ring plays silence, counted as an underrun
while a call is up). Everything else happens on the driver's media thread (:mod:`drivers.fxo.pump`).

``pyaudio`` is imported here only, so a machine without PortAudio still runs the rest of gatewayd.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from drivers.fxo.config import FxoConfig
from drivers.line import LineError
from media.ring import FrameRing

log = logging.getLogger(__name__)


def pick_device(devices: list[dict[str, Any]], name: str, want_input: bool) -> int:
    """Index of the PortAudio device called ``name`` (exact), else the one whose name contains it."""
    key = "maxInputChannels" if want_input else "maxOutputChannels"
    usable = [d for d in devices if int(d.get(key, 0)) >= 1]
    exact = [d for d in usable if d["name"] == name]
    if exact:
        return int(exact[0]["index"])
    partial = [d for d in usable if name in str(d["name"])]
    if len(partial) == 1:
        return int(partial[0]["index"])
    direction = "capture" if want_input else "playback"
    names = ", ".join(repr(d["name"]) for d in usable) or "none"
    if partial:
        raise LineError(f"audio device {name!r} is ambiguous for {direction}: {names}")
    raise LineError(f"no {direction} audio device {name!r}; PortAudio offers: {names}")


class PortAudioDuplex:
    """One full-duplex PortAudio stream; see the module docstring for what the callback does."""

    def __init__(self, config: FxoConfig, capture: FrameRing[bytes], playout: FrameRing[bytes],
                 wake: threading.Event) -> None:
        self.cfg = config
        self.capture = capture
        self.playout = playout
        self.wake = wake
        self.period = config.audio_rate // 50
        self._silence = bytes(2 * self.period)
        self.playout_active = False  # count underruns only while a call is up
        self.callbacks = 0
        self.input_overflows = 0  # PortAudio's own flags (the device lost samples)
        self.output_underflows = 0
        self.last_callback = 0.0
        self._pa: Any = None
        self._stream: Any = None

    def open(self) -> None:
        try:
            import pyaudio
        except ImportError as e:  # pragma: no cover - the audio extra is part of the dev set-up
            raise LineError("pyaudio is not installed (pip install 'gatewayd[audio]')") from e
        self._pa = pyaudio.PyAudio()
        try:
            devices = [self._pa.get_device_info_by_index(i) for i in range(self._pa.get_device_count())]
            in_idx = pick_device(devices, self.cfg.audio_device, want_input=True)
            out_idx = pick_device(devices, self.cfg.audio_output_device or self.cfg.audio_device, want_input=False)
            self.last_callback = time.monotonic()
            self._stream = self._pa.open(
                format=pyaudio.paInt16, channels=1, rate=self.cfg.audio_rate, input=True, output=True,
                input_device_index=in_idx, output_device_index=out_idx, frames_per_buffer=self.period,
                stream_callback=self._callback, start=True)
        except LineError:
            self.close()
            raise
        except (OSError, ValueError) as e:
            self.close()
            raise LineError(f"cannot open audio device {self.cfg.audio_device!r} at {self.cfg.audio_rate} Hz: {e}") \
                from e
        log.info("%s: audio %r at %d Hz, %d frames per period", self.cfg.name, self.cfg.audio_device,
                 self.cfg.audio_rate, self.period)

    def _callback(self, in_data: bytes | None, frame_count: int, time_info: Any, status: int) -> tuple[bytes, int]:
        self.callbacks += 1
        self.last_callback = time.monotonic()
        if status & 0x2:  # paInputOverflow
            self.input_overflows += 1
        if status & 0x4:  # paOutputUnderflow
            self.output_underflows += 1
        if in_data:
            self.capture.put(in_data)
            self.wake.set()
        out = self.playout.get(count_underrun=self.playout_active)
        if out is None or len(out) != 2 * frame_count:
            out = self._silence if frame_count == self.period else bytes(2 * frame_count)
        return out, 0  # paContinue

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop_stream()
                stream.close()
            except OSError as e:
                log.warning("%s: closing the audio stream: %s", self.cfg.name, e)
        pa, self._pa = self._pa, None
        if pa is not None:
            pa.terminate()

    @property
    def is_open(self) -> bool:
        return self._stream is not None
