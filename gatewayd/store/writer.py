"""The spool writer: one thread that drains every open recording's ring into its WAV file.

It wakes every ``writer_interval`` seconds (and at once when a recording is finished), appends what the
media path put (filling dropped blocks with silence so timing is kept), fsyncs at least every
``fsync_interval`` seconds or ``fsync_bytes`` bytes, and on finish cuts/trims the end, patches the
header, fsyncs and marks the sidecar closed. A write error (disk full, file too large, I/O error) ends
that recording only: what reached the disk is kept (header repaired) and still uploaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from gatewayd.store.errors import SpoolError
from gatewayd.store.recording import Recording
from gatewayd.store.sidecar import State
from media.wav import HEADER_BYTES, WavWriter, repair_header

log = logging.getLogger(__name__)


class _Open:
    """Writer-side state of one recording."""

    def __init__(self, rec: Recording, f: BinaryIO, wav: WavWriter) -> None:
        self.rec = rec
        self.f = f
        self.wav = wav
        self.block = 2 * rec.channels
        self.samples = 0  # samples per channel in the file
        self.unsynced = 0
        self.last_sync = time.monotonic()


class SpoolWriter:
    def __init__(self, *, interval: float, fsync_interval: float, fsync_bytes: int,
                 on_closed: Callable[[Recording], None], on_error: Callable[[Recording, SpoolError], None],
                 emit: Callable[..., None]) -> None:
        self.interval = interval
        self.fsync_interval = fsync_interval
        self.fsync_bytes = fsync_bytes
        self._on_closed = on_closed
        self._on_error = on_error
        self._emit = emit
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, rec: Recording, f: BinaryIO, wav: WavWriter) -> None:
        with self._lock:
            self._open[rec.recording_id] = _Open(rec, f, wav)
        with rec.cv:
            rec.written_bytes = rec.synced_bytes = HEADER_BYTES

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish every open recording (no trimming), close its file, and end the thread."""
        with self._lock:
            recs = [o.rec for o in self._open.values()]
            self._stopping = True
        for rec in recs:
            with rec.cv:
                if rec.finish_request is None:
                    rec.finish_request = (0, None)
            rec.stop_accepting()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def open_count(self) -> int:
        with self._lock:
            return len(self._open)

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                items = list(self._open.values())
                stopping = self._stopping
            for o in items:
                try:
                    self._service(o)
                except Exception:  # a bug must not stop the other recordings
                    log.exception("spool writer: unexpected error on %s", o.rec)
                    self._fail(o, SpoolError("unexpected error in the spool writer", path=str(o.rec.path)))
            if stopping and self.open_count == 0:
                return

    def _drain(self, o: _Open) -> None:
        blocks = []
        ring = o.rec.ring
        while (item := ring.get()) is not None:
            blocks.append(item)
        if not blocks:
            return
        chunks = []
        pos = o.samples
        for start, block in blocks:
            samples = block
            if start > pos:  # blocks dropped by a ring overflow: keep the timing with silence
                shape = (start - pos,) if o.rec.channels == 1 else (start - pos, o.rec.channels)
                chunks.append(np.zeros(shape, dtype=np.int16))
                pos = start
            elif start < pos:  # cannot happen with one producer; never write audio twice
                samples = block[pos - start:]
            chunks.append(samples)
            pos += samples.shape[0]
        data = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        o.wav.write(data)
        o.wav.flush()
        o.samples = o.wav.samples_written
        n = data.shape[0] * o.block
        o.unsynced += n
        with o.rec.cv:
            o.rec.written_bytes = HEADER_BYTES + o.samples * o.block
        self._emit("flushed", o.rec.recording_id, samples=o.samples)

    def _sync(self, o: _Open) -> None:
        os.fsync(o.f.fileno())
        o.unsynced = 0
        o.last_sync = time.monotonic()
        with o.rec.cv:
            o.rec.synced_bytes = o.rec.written_bytes
            o.rec.cv.notify_all()
        self._emit("synced", o.rec.recording_id, samples=o.samples)

    def _service(self, o: _Open) -> None:
        rec = o.rec
        with rec.cv:
            request = rec.finish_request
        try:
            self._drain(o)
            if request is not None:
                self._close(o, *request)
                return
            if o.unsynced and (o.unsynced >= self.fsync_bytes or time.monotonic() - o.last_sync >= self.fsync_interval):
                self._sync(o)
        except OSError as e:
            self._fail(o, SpoolError.from_oserror("cannot write the recording to the spool", e, rec.path))

    def _close(self, o: _Open, trim: int, cut_at: int | None) -> None:
        keep = o.samples if cut_at is None else min(o.samples, cut_at)
        keep = max(0, keep - trim)
        if keep < o.samples:
            o.f.flush()
            o.f.truncate(HEADER_BYTES + keep * o.block)
            o.wav.samples_written = keep
            o.samples = keep
        o.f.seek(0, os.SEEK_END)
        o.wav.close(fsync=True)  # patches the header sizes and fsyncs
        o.f.close()
        self._closed(o, keep, None)

    def _closed(self, o: _Open, samples: int, error: SpoolError | None) -> None:
        rec = o.rec
        with self._lock:
            self._open.pop(rec.recording_id, None)
        size = HEADER_BYTES + samples * o.block
        with rec.cv:
            sc = rec.sidecar
            sc.samples = samples
            sc.size = size
            sc.state = State.CLOSED
            sc.metadata["recording-duration"] = f"{samples / rec.sample_rate:.3f}"
            if error is not None:
                sc.spool_error = str(error)
            rec.written_bytes = rec.synced_bytes = size
            rec.closed = True
            rec.cv.notify_all()
        self._emit("closed", rec.recording_id, samples=samples, size=size)
        self._on_closed(rec)

    def _fail(self, o: _Open, err: SpoolError) -> None:
        """The spool cannot take more of this recording: keep what is on disk and hand it over."""
        rec = o.rec
        rec.stop_accepting()
        rec.ring.clear()
        rec.error = err
        log.error("recording %s: %s; %s", rec.recording_id, err, "keeping the audio already written")
        self._on_error(rec, err)
        with contextlib.suppress(OSError):  # the buffered tail cannot be written either
            o.f.close()
        try:
            samples = repair_header(rec.path)
        except (OSError, ValueError) as e:
            # the file cannot even be repaired now; the sidecar stays "recording" and start-up recovery
            # tries again
            log.error("recording %s: cannot repair %s: %s", rec.recording_id, rec.path, e)
            with self._lock:
                self._open.pop(rec.recording_id, None)
            return
        self._closed(o, samples, err)
