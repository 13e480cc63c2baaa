"""The recording store: spool first, then upload; a recording is never lost.

Life cycle (the daemon)::

    store = RecordingStore(StoreConfig(spool_dir=..., buckets={...}, default_backend=...))
    store.start()            # spool checks, writer thread, and start-up recovery of every spooled recording
    ...
    store.stop(drain_timeout=5.0)   # closes open recordings; what is not uploaded yet stays spooled

Per recording (the runtime)::

    rec = store.open_recording(bucket, key, transaction_id=..., call_id=..., channels=1)  # SpoolError
    rec.put(samples)          # media path, non-blocking
    fut = rec.finish(trim_samples=n)   # control path; fut resolves to a RecordingOutcome
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from gatewayd.store.buckets import BucketBackend, open_backend
from gatewayd.store.config import BackendConfig, StoreConfig
from gatewayd.store.errors import (
    UPLOAD_FAILED_ERROR_TYPE,
    UPLOAD_FAILED_MESSAGE,
    SpoolError,
    SpoolFull,
    StoreError,
)
from gatewayd.store.metrics import Listener, StoreEvent, StoreMetrics
from gatewayd.store.recording import Recording, RecordingOutcome
from gatewayd.store.sidecar import Sidecar, State
from gatewayd.store.uploader import UploadJob
from gatewayd.store.writer import SpoolWriter
from media.wav import HEADER_BYTES, WavError, WavWriter, header, repair_header

log = logging.getLogger(__name__)

ACL_BUCKET_OWNER_FULL_CONTROL = "bucket-owner-full-control"


class UnknownBucket(StoreError):
    """No backend is configured for this bucket name (and there is no default backend)."""

    error_type = UPLOAD_FAILED_ERROR_TYPE
    message = UPLOAD_FAILED_MESSAGE


class RecordingStore:
    def __init__(self, config: StoreConfig, *, listener: Listener | None = None) -> None:
        self.config = config
        self.spool_dir = Path(config.spool_dir)
        self.listener = listener
        self.metrics = StoreMetrics()
        self.metrics.backlog = self.backlog
        self.stop_event = threading.Event()
        self.recovery_slots = threading.BoundedSemaphore(max(1, config.recovery_concurrency))
        self.io_pool = ThreadPoolExecutor(max(1, config.upload_threads), thread_name_prefix="upload-io")
        self._backends: dict[BackendConfig, BucketBackend] = {}
        self._lock = threading.Condition()
        self._recordings: dict[str, Recording] = {}
        self._jobs: dict[str, UploadJob] = {}
        self._running = False
        self._spool_problem: SpoolError | None = None
        self._writer = SpoolWriter(interval=config.writer_interval, fsync_interval=config.fsync_interval,
                                   fsync_bytes=config.fsync_bytes, on_closed=self._on_closed,
                                   on_error=self._on_spool_error, emit=self.emit)

    # ------------------------------------------------------------------ life cycle
    def start(self, recover: bool = True) -> list[str]:
        """Start the writer, open the configured backends and (``recover``) resume every spooled recording.

        Returns the ids of the recordings picked up again. An unusable spool directory does not stop the
        store: it is logged, and every :meth:`open_recording` fails with :class:`SpoolError` until it is
        fixed.
        """
        if self._running:
            raise StoreError("store already started")
        self._running = True
        self._check_spool_dir()
        for cfg in {*self.config.buckets.values(), *([self.config.default_backend] if self.config.default_backend
                                                      else [])}:
            self._backend(cfg)
        self._writer.start()
        return self.recover() if recover and self._spool_problem is None else []

    def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop taking recordings, close the open ones, give uploads ``drain_timeout`` s to finish, then stop.

        Whatever is not confirmed stays in the spool for the next start; outcomes still pending are
        reported as upload failures.
        """
        if not self._running:
            return
        self._running = False
        self._writer.stop()
        if drain_timeout > 0:
            self.wait_idle(drain_timeout)
        self.stop_event.set()
        with self._lock:
            jobs = list(self._jobs.values())
            recs = list(self._recordings.values())
        for job in jobs:
            job.thread.join(max(5.0, self._read_timeout()))
        for rec in recs:
            self.fail_outcome(rec, "the store stopped before the upload was confirmed")
        self.io_pool.shutdown(wait=False, cancel_futures=True)
        for backend in self._backends.values():
            try:
                backend.close()
            except Exception:
                log.exception("closing %s", backend.describe())

    def _read_timeout(self) -> float:
        from gatewayd.store.config import S3EndpointConfig

        timeouts = [c.connect_timeout + c.read_timeout for c in self._backends if isinstance(c, S3EndpointConfig)]
        return max(timeouts, default=0.0)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every spooled recording is confirmed (no open recording, no upload job)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._jobs or self._recordings:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left if left is not None else 1.0)
        return True

    # ------------------------------------------------------------------ buckets
    def _backend(self, cfg: BackendConfig) -> BucketBackend:
        with self._lock:
            backend = self._backends.get(cfg)
            if backend is None:
                backend = self._backends[cfg] = open_backend(cfg)
            return backend

    def backend_for(self, bucket: str) -> BucketBackend:
        """The backend that holds ``bucket`` (also for reading, e.g. PlayAudio); raises :class:`UnknownBucket`."""
        cfg = self.config.backend_for(bucket)
        if cfg is None:
            raise UnknownBucket(f"no backend is configured for bucket {bucket!r}")
        return self._backend(cfg)

    # ------------------------------------------------------------------ spool
    def _check_spool_dir(self) -> None:
        try:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            probe = self.spool_dir / f".probe-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"")
            probe.unlink()
            self._spool_problem = None
        except OSError as e:
            self._spool_problem = SpoolError.from_oserror("the spool directory is not usable", e, self.spool_dir)
            log.error("%s: recordings will fail until it is fixed", self._spool_problem)

    def backlog(self) -> tuple[int, int]:
        """Recordings in the spool not yet confirmed: (count, bytes)."""
        with self._lock:
            recs = list(self._recordings.values())
        return len(recs), sum(r.written_bytes for r in recs)

    def _check_space(self) -> None:
        if self._spool_problem is not None:
            self._check_spool_dir()  # maybe fixed meanwhile
            if self._spool_problem is not None:
                raise self._spool_problem
        cfg = self.config
        if cfg.spool_max_bytes is not None:
            _, used = self.backlog()
            if used >= cfg.spool_max_bytes:
                raise SpoolFull(f"the spool holds {used} bytes of recordings not yet uploaded "
                                f"(limit {cfg.spool_max_bytes})", str(self.spool_dir))
        try:
            st = os.statvfs(self.spool_dir)
        except OSError as e:
            raise SpoolError.from_oserror("cannot examine the spool directory", e, self.spool_dir) from e
        free = st.f_bavail * st.f_frsize
        if free < cfg.spool_min_free_bytes:
            raise SpoolFull(f"only {free} bytes free in the spool's file system "
                            f"(minimum {cfg.spool_min_free_bytes})", str(self.spool_dir))

    # ------------------------------------------------------------------ recordings
    def open_recording(self, bucket: str, key: str, *, transaction_id: str, call_id: str, channels: int = 1,
                       sample_rate: int = 8000, extra_metadata: Mapping[str, str] | None = None,
                       acl: str | None = ACL_BUCKET_OWNER_FULL_CONTROL, recording_id: str | None = None,
                       on_outcome: Callable[[RecordingOutcome], None] | None = None) -> Recording:
        """Start spooling a recording for ``s3://bucket/key`` (control path).

        Raises :class:`UnknownBucket` when no backend holds ``bucket``, :class:`SpoolError` (or
        :class:`SpoolFull`) when the spool cannot take it. ``on_outcome`` is called once with the
        outcome, on a store thread (hand it to the event loop with ``call_soon_threadsafe``).
        """
        if not self._running:
            raise StoreError("the recording store is not running")
        if channels not in (1, 2):
            raise ValueError("a recording has 1 (mono) or 2 (stereo) channels")
        backend = self.backend_for(bucket)
        backend.check_key(key)
        self._check_space()
        rid = recording_id or str(uuid.uuid4())
        metadata = {"transaction-id": transaction_id, "call-id": call_id, **(extra_metadata or {})}
        sc = Sidecar(recording_id=rid, bucket=bucket, key=key, channels=channels, sample_rate=sample_rate,
                     metadata=metadata, acl=acl, state=State.RECORDING, created=time.time())
        path = Sidecar.wav_for(self.spool_dir, rid)
        try:
            sc.save(self.spool_dir)
        except OSError as e:
            raise SpoolError.from_oserror("cannot create the recording's sidecar", e) from e
        f = None
        try:
            f = open(path, "wb")  # noqa: SIM115 (owned by the writer thread from here on)
            wav = WavWriter(f, sample_rate, channels)
            f.flush()
        except OSError as e:
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
            sc.remove(self.spool_dir)
            raise SpoolError.from_oserror("cannot create the recording file", e, path) from e
        outcome: Future[RecordingOutcome] = Future()
        if on_outcome is not None:
            outcome.add_done_callback(lambda fut: on_outcome(fut.result()))
        rec = Recording(self, sc, path, self.config.ring_frames, outcome)
        job = UploadJob(self, rec, backend)
        with self._lock:
            self._recordings[rid] = rec
            self._jobs[rid] = job
        self._writer.add(rec, f, wav)
        job.start()
        self.metrics.count("recordings_opened")
        self.emit("opened", rid, bucket=bucket, key=key, channels=channels)
        log.info("recording %s opened for s3://%s/%s (%d ch)", rid, bucket, key, channels)
        return rec

    def _finish(self, rec: Recording, trim: int, cut_at: int | None) -> None:
        with rec.cv:
            if rec.finish_request is not None or rec.closed:
                return
            rec.stop_accepting()
            rec.stop_time = time.monotonic()
            rec.finish_request = (trim, cut_at)
        self._writer.wake()
        with self._lock:
            job = self._jobs.get(rec.recording_id)
        if job is not None and job.fail_fast_error:
            self.fail_outcome(rec, job.fail_fast_error)
        else:
            rec.start_deadline(self.config.upload_wait, lambda: self.fail_outcome(
                rec, f"not confirmed within {self.config.upload_wait:g} s of the stop"))

    def fail_outcome(self, rec: Recording, detail: str) -> None:
        if rec.resolve(rec.upload_failure(detail)):
            self.metrics.count("outcomes_failed")
            self.emit("outcome", rec.recording_id, ok=False, detail=detail)
            log.warning("recording %s: reporting upload failure (%s); it stays spooled and is retried",
                        rec.recording_id, detail)

    def _on_spool_error(self, rec: Recording, err: SpoolError) -> None:
        self.metrics.count("spool_errors")
        self.emit("spool_error", rec.recording_id, error=str(err), errno=err.errno)
        if rec.resolve(rec.spool_failure(err)):
            self.metrics.count("outcomes_failed")
            self.emit("outcome", rec.recording_id, ok=False, detail=str(err))

    def _on_closed(self, rec: Recording) -> None:
        self.metrics.count("frames_dropped", rec.dropped_blocks)
        if rec.dropped_blocks:
            log.warning("recording %s: %d blocks dropped by ring overflow (replaced by silence)",
                        rec.recording_id, rec.dropped_blocks)
        try:
            rec.save_sidecar(self.spool_dir)
        except OSError as e:
            log.warning("recording %s: cannot mark the sidecar closed: %s (recovery will redo it)",
                        rec.recording_id, e)

    def job_done(self, job: UploadJob) -> None:
        rid = job.rec.recording_id
        with self._lock:
            if self._jobs.get(rid) is job:
                del self._jobs[rid]
            if job.rec.sidecar.state == State.UPLOADED:
                self._recordings.pop(rid, None)
            self._lock.notify_all()

    def emit(self, name: str, recording_id: str, **fields: object) -> None:
        if self.listener is None:
            return
        try:
            self.listener(StoreEvent(name, recording_id, fields))
        except Exception:
            log.exception("store event listener failed on %s", name)

    # ------------------------------------------------------------------ start-up recovery
    def recover(self) -> list[str]:
        """Pick up every spooled recording not yet confirmed: repair, then upload in the background."""
        recovered: list[str] = []
        for tmp in self.spool_dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        for path in sorted(self.spool_dir.glob("*.json")):
            try:
                rid = self._recover_one(path)
            except Exception:
                log.exception("recovery of %s failed; it stays in the spool", path)
                continue
            if rid:
                recovered.append(rid)
        if recovered:
            log.info("recovering %d spooled recording(s)", len(recovered))
        return recovered

    def _recover_one(self, path: Path) -> str | None:
        try:
            sc = Sidecar.load(path)
        except ValueError as e:
            log.error("%s; left in the spool", e)
            return None
        with self._lock:
            if sc.recording_id in self._recordings:
                return None
        wav = Sidecar.wav_for(self.spool_dir, sc.recording_id)
        if sc.state == State.UPLOADED:
            sc.remove(self.spool_dir)
            return None
        if not wav.exists():
            if sc.state == State.RECORDING:  # crashed between the sidecar and the WAV: nothing recorded
                sc.remove(self.spool_dir)
            else:
                log.error("recording %s: sidecar says closed but %s is missing; moved aside", sc.recording_id, wav)
                path.rename(path.with_suffix(".json.orphan"))
            return None
        if sc.state == State.RECORDING:
            samples = self._repair(wav, sc)
            sc.samples = samples
            sc.size = HEADER_BYTES + samples * 2 * sc.channels
            sc.state = State.CLOSED
            sc.metadata["recording-duration"] = f"{samples / sc.sample_rate:.3f}"
            sc.save(self.spool_dir)
            log.info("recording %s: repaired after a crash, %d samples kept", sc.recording_id, samples)
        try:
            backend = self.backend_for(sc.bucket)
        except UnknownBucket:
            log.error("recording %s: bucket %r is not configured any more; left in the spool", sc.recording_id,
                      sc.bucket)
            return None
        rec = Recording(self, sc, wav, 2)
        rec.stop_accepting()
        rec.closed = True
        rec.written_bytes = rec.synced_bytes = sc.size or 0
        job = UploadJob(self, rec, backend, recovered=True)
        with self._lock:
            self._recordings[sc.recording_id] = rec
            self._jobs[sc.recording_id] = job
        job.start()
        self.metrics.count("recovered")
        self.emit("recovered", sc.recording_id, samples=sc.samples, state=str(sc.state))
        return sc.recording_id

    @staticmethod
    def _repair(wav: Path, sc: Sidecar) -> int:
        try:
            return repair_header(wav)
        except WavError:
            if wav.stat().st_size >= HEADER_BYTES:
                raise
        # the crash came before the header was complete: nothing was recorded
        with open(wav, "r+b") as f:
            f.truncate(0)
            f.write(header(0, sc.sample_rate, sc.channels))
            f.flush()
            os.fsync(f.fileno())
        return 0

