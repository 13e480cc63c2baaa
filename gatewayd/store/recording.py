"""A recording in progress: the media path's handle and the outcome the runtime waits for.

The media path calls :meth:`Recording.put` (or ``put_frame`` / ``put_stereo``) with int16 samples; that
is a non-blocking append to a bounded ring (overflow drops the oldest block and counts it; the writer
fills the gap with silence so the file keeps the leg's timing). The control path calls
:meth:`Recording.finish` once, which returns a future resolved with a :class:`RecordingOutcome`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gatewayd.store.errors import (
    SPOOL_FAILED_ERROR_TYPE,
    UPLOAD_FAILED_ERROR_TYPE,
    UPLOAD_FAILED_MESSAGE,
    SpoolError,
)
from gatewayd.store.sidecar import Sidecar
from media.frame import AudioFrame, Samples
from media.ring import FrameRing

if TYPE_CHECKING:
    from gatewayd.store.store import RecordingStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordingOutcome:
    """What the runtime reports for a recording.

    ``ok``: the object is in the bucket (confirmed by HEAD, ACL applied): ACTION_SUCCESSFUL with
    ``RecordingDestination{Type: S3, BucketName: bucket, Key: key}``. Otherwise ACTION_FAILED with
    ``error_type``/``error_message``; the recording stays spooled and is still delivered later.
    """

    ok: bool
    recording_id: str
    bucket: str
    key: str
    samples: int | None = None  # per channel, in the object (None if not known yet)
    sample_rate: int = 8000
    error_type: str | None = None
    error_message: str | None = None
    detail: str | None = None  # for the log: what went wrong underneath

    @property
    def duration(self) -> float | None:
        return None if self.samples is None else self.samples / self.sample_rate


Block = tuple[int, Samples]  # (sample index of the first sample, samples)


class Recording:
    """Handle of one spooled recording. Create it with :meth:`RecordingStore.open_recording`."""

    def __init__(self, store: RecordingStore, sidecar: Sidecar, path: Path, ring_frames: int,
                 outcome: Future[RecordingOutcome] | None = None) -> None:
        self._store = store
        self.sidecar = sidecar
        self.recording_id = sidecar.recording_id
        self.bucket = sidecar.bucket
        self.key = sidecar.key
        self.channels = sidecar.channels
        self.sample_rate = sidecar.sample_rate
        self.path = path
        self.ring: FrameRing[Block] = FrameRing(ring_frames)
        self._pos = 0  # samples put (producer side)
        self._accepting = True
        self.error: SpoolError | None = None
        self.outcome: Future[RecordingOutcome] = outcome or Future()
        self.outcome.set_running_or_notify_cancel()
        # shared between the writer thread and the uploader (under cv)
        self.cv = threading.Condition()
        self.written_bytes = 0  # bytes of the WAV handed to the OS (header included)
        self.synced_bytes = 0  # bytes of the WAV known to be on disk (fsynced)
        self.closed = False  # the WAV is final: sidecar.size / sidecar.samples are set
        self.finish_request: tuple[int, int | None] | None = None  # (trim_samples, cut_at)
        self.stop_time: float | None = None  # time.monotonic() of finish()
        self._timer: threading.Timer | None = None
        self._save_lock = threading.Lock()

    def save_sidecar(self, spool: Path) -> None:
        """Persist the sidecar: a snapshot under :attr:`cv`, written outside it (saves are serialised so
        an older snapshot never overwrites a newer one). Raises OSError."""
        with self._save_lock:
            with self.cv:
                data = self.sidecar.to_bytes()
            self.sidecar.save(spool, data)

    # ------------------------------------------------------------------ media path (non-blocking)
    def put(self, samples: Samples) -> bool:
        """Append int16 samples: shape (n,) for mono, (n, 2) for stereo (left = incoming, right = outgoing).

        Never blocks. Returns False when the recording no longer takes audio (finished, or the spool
        failed — see :attr:`error`) or when the ring overflowed and dropped its oldest block. The array
        must not be modified afterwards.
        """
        if not self._accepting:
            return False
        if samples.dtype != np.int16 or (samples.ndim == 1) != (self.channels == 1) or (
                samples.ndim == 2 and samples.shape[1] != self.channels):
            raise ValueError(f"recording {self.recording_id} takes int16 samples with {self.channels} channel(s), "
                             f"got {samples.dtype} {samples.shape}")
        pos = self._pos
        self._pos = pos + samples.shape[0]
        return self.ring.put((pos, samples))

    def put_frame(self, frame: AudioFrame) -> bool:
        return self.put(frame.samples)

    def put_stereo(self, incoming: Samples, outgoing: Samples) -> bool:
        """Stereo (StartCallRecording BOTH): left = incoming, right = outgoing, same length."""
        return self.put(np.column_stack((incoming, outgoing)))

    @property
    def samples_put(self) -> int:
        return self._pos

    @property
    def dropped_blocks(self) -> int:
        return self.ring.dropped

    @property
    def accepting(self) -> bool:
        return self._accepting

    # ------------------------------------------------------------------ control path
    def finish(self, trim_samples: int = 0, cut_at: int | None = None) -> Future[RecordingOutcome]:
        """Stop recording and deliver the file: keep samples ``[0, cut_at)`` (all when None), then drop
        ``trim_samples`` more from the end (the terminator tone). Idempotent; returns :attr:`outcome`.

        The outcome resolves when the object is confirmed in the bucket, or with failure
        (``InvalidActionParameter``, "Error occurred while uploading recording to S3 bucket.") when that
        has not happened within the store's ``upload_wait`` — the upload goes on regardless.
        """
        if trim_samples < 0 or (cut_at is not None and cut_at < 0):
            raise ValueError("trim_samples and cut_at must not be negative")
        self._store._finish(self, trim_samples, cut_at)
        return self.outcome

    # ------------------------------------------------------------------ resolution (any thread)
    def resolve(self, outcome: RecordingOutcome) -> bool:
        """Set the outcome once; later calls are ignored. Returns whether this call set it."""
        with self.cv:
            if self.outcome.done():
                return False
            if self._timer is not None:
                self._timer.cancel()
            try:
                self.outcome.set_result(outcome)
            except InvalidStateError:
                return False
        return True

    def success(self) -> RecordingOutcome:
        return RecordingOutcome(True, self.recording_id, self.bucket, self.key, self.sidecar.samples,
                                self.sample_rate)

    def upload_failure(self, detail: str) -> RecordingOutcome:
        return RecordingOutcome(False, self.recording_id, self.bucket, self.key, self.sidecar.samples,
                                self.sample_rate, UPLOAD_FAILED_ERROR_TYPE, UPLOAD_FAILED_MESSAGE, detail)

    def spool_failure(self, err: SpoolError) -> RecordingOutcome:
        return RecordingOutcome(False, self.recording_id, self.bucket, self.key, None, self.sample_rate,
                                SPOOL_FAILED_ERROR_TYPE, err.message, str(err))

    def start_deadline(self, seconds: float, on_deadline: Callable[[], None]) -> None:
        with self.cv:
            if self.outcome.done() or self._timer is not None:
                return
            self._timer = threading.Timer(seconds, on_deadline)
            self._timer.name = f"rec-deadline-{self.recording_id[:8]}"
            self._timer.daemon = True
            self._timer.start()

    def stop_accepting(self) -> None:
        self._accepting = False

    def __repr__(self) -> str:
        return f"<Recording {self.recording_id} s3://{self.bucket}/{self.key} {self.channels}ch>"
