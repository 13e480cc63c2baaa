"""The per-call pjmedia port that moves 20 ms frames between a call and its :class:`FramePort`.

pjmedia's conference bridge calls :meth:`LegPort.onFrameRequested` (audio to send into the call) and
:meth:`LegPort.onFrameReceived` (audio the call received) once per 20 ms tick, on its clock thread.
Frames are copied with ``ctypes.memmove`` through the ``std::vector``'s data pointer, which takes a few
microseconds where ``bytes(frame.buf)`` takes about a millisecond.

On each received frame the leg's FramePort gets ``push_rx(frame)`` and then ``pull_tx(pts)``; the samples
it returns are sent on the next request (one frame, 20 ms, later). Nothing here raises into pjmedia: an
exception (a bad FramePort) is counted, the frame is replaced by silence, and the pjsua2 thread logs it.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import pjsua2 as pj

from drivers.line import FramePort
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples

FRAME_BYTES = FRAME_SAMPLES * 2
_SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.int16)


def _vector_data(vec: Any) -> int:
    """Address of the first element of a SWIG-wrapped ``std::vector<unsigned char>``."""
    ptr = ctypes.c_void_p.from_address(int(vec.this)).value
    if not ptr:
        raise ValueError("empty frame buffer")
    return ptr


class LegMedia:
    """Media state of one leg, shared by pjmedia's clock thread (writer) and the pjsua2 thread (reader).

    Counters are plain ints updated by one thread; readers only look at them.
    """

    def __init__(self, port: FramePort) -> None:
        self.port = port
        self.pts = 0  # samples pushed so far: the leg's receive time
        self._next_tx: Samples = _SILENCE
        self.frames_rx = 0
        self.frames_tx = 0
        self.bad_frames = 0  # received frames that were not 160 samples of audio (replaced by silence)
        self.errors = 0  # exceptions raised by the FramePort
        self.last_error: BaseException | None = None
        self.closed = False  # the call ended: the clock may still tick the port, the FramePort hears no more

    def close(self) -> None:
        self.closed = True

    def received(self, samples: Samples) -> None:
        if self.closed:
            return
        pts = self.pts
        self.pts = pts + FRAME_SAMPLES
        self.frames_rx += 1
        try:
            self.port.push_rx(AudioFrame(samples, pts, SAMPLE_RATE))
            tx = self.port.pull_tx(pts)
            if tx.dtype != np.int16 or tx.shape != (FRAME_SAMPLES,) or not tx.flags.c_contiguous:
                tx = np.ascontiguousarray(np.resize(np.asarray(tx, dtype=np.int16), FRAME_SAMPLES))
            self._next_tx = tx
        except Exception as e:
            self.errors += 1
            self.last_error = e
            self._next_tx = _SILENCE

    def to_send(self) -> Samples:
        self.frames_tx += 1
        tx = self._next_tx
        self._next_tx = _SILENCE  # a frame is sent once; silence if the port fell behind
        return tx


class LegPort(pj.AudioMediaPort):  # type: ignore[misc]
    """pjmedia port of one leg (8 kHz, mono, 16-bit, 20 ms)."""

    def __init__(self, media: LegMedia, name: str) -> None:
        super().__init__()
        self.media = media
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, SAMPLE_RATE, 1, 20000, 16)
        self.createPort(name, fmt)

    def onFrameReceived(self, frame: Any) -> None:
        media = self.media
        try:
            if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size == FRAME_BYTES:
                buf = frame.buf
                samples = np.empty(FRAME_SAMPLES, dtype=np.int16)
                ctypes.memmove(samples.ctypes.data, _vector_data(buf), FRAME_BYTES)
            else:
                media.bad_frames += 1
                samples = _SILENCE.copy()
            media.received(samples)
        except Exception as e:
            media.errors += 1
            media.last_error = e

    def onFrameRequested(self, frame: Any) -> None:
        media = self.media
        try:
            tx = media.to_send()
            buf = frame.buf
            buf.resize(FRAME_BYTES)
            ctypes.memmove(_vector_data(buf), tx.ctypes.data, FRAME_BYTES)
            frame.size = FRAME_BYTES
            frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        except Exception as e:
            media.errors += 1
            media.last_error = e
            try:
                frame.type = pj.PJMEDIA_FRAME_TYPE_NONE  # send nothing rather than echo the caller
                frame.size = 0
            except Exception:
                pass
