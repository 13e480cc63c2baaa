"""Upload jobs: one thread per spooled recording until its object is confirmed in the bucket.

While the recording runs, full middle parts are streamed to a multipart upload (S3 only). When it is
closed, the job sends what is missing — one PUT for a recording that fits in one part, otherwise the
tail and part 1 (the header) in parallel, then CompleteMultipartUpload — then the final metadata (a
metadata-only CopyObject when the multipart upload had to be created before the duration was known),
PutObjectAcl, and a HEAD whose size must match. Only then is the spool file removed.

Every failure is retried with exponential backoff and jitter, for as long as the store runs (and after
a restart, from the sidecar). A multipart upload that cannot be used any more is aborted; one that
cannot be aborted now is remembered in the sidecar and aborted later.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

from gatewayd.store.buckets import BucketBackend, FileSlice
from gatewayd.store.errors import BucketError, NoSuchUpload, PermanentBucketError, TransientBucketError
from gatewayd.store.parts import Part, plan_final, single_put, streamable_parts
from gatewayd.store.recording import Recording
from gatewayd.store.sidecar import PartRecord, State

if TYPE_CHECKING:
    from gatewayd.store.store import RecordingStore

log = logging.getLogger(__name__)

# errors that no retry within the outcome's wait will fix: report the failure at once (keep retrying)
FAIL_FAST_CODES = frozenset({
    "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoCredentials",
    "InvalidBucketName", "AllAccessDisabled", "AccountProblem", "KeyTooLongError", "InvalidKey",
})
# PutObjectAcl on a bucket whose ACLs are disabled (Object Ownership "bucket owner enforced"): the
# owner already has full control, which is what the ACL asks for
ACL_NOT_SUPPORTED = frozenset({"AccessControlListNotSupported"})


class _Stopped(Exception):
    """The store is stopping: leave the rest to the next start (the sidecar says where we are)."""


class UploadJob:
    def __init__(self, store: RecordingStore, rec: Recording, backend: BucketBackend, *,
                 recovered: bool = False) -> None:
        self.store = store
        self.rec = rec
        self.backend = backend
        self.recovered = recovered
        self.cfg = store.config
        self.holdback = round(self.cfg.holdback_seconds * rec.sample_rate) * 2 * rec.channels
        self._attempt = 0
        self.fail_fast_error: str | None = None  # a failure that retrying will not fix soon
        self._complete_size: int | None = None  # the object is complete with this many bytes
        self._metadata_final = False
        self.thread = threading.Thread(target=self._run, name=f"upload-{rec.recording_id[:8]}", daemon=True)

    # ------------------------------------------------------------------ plumbing
    @property
    def _stop(self) -> threading.Event:
        return self.store.stop_event

    def start(self) -> None:
        self.thread.start()

    def _save(self) -> None:
        """Persist the sidecar; a failure is logged (the upload goes on, recovery redoes what is lost)."""
        try:
            self.rec.save_sidecar(self.store.spool_dir)
        except OSError as e:
            log.warning("recording %s: cannot update sidecar: %s", self.rec.recording_id, e)

    def _backoff(self) -> None:
        """Sleep before the next attempt; the recording being stopped meanwhile cuts the sleep short (its
        final upload should not wait for a retry timer of the streaming phase)."""
        delay = min(self.cfg.retry_max, self.cfg.retry_initial * 2 ** min(self._attempt, 30))
        self._attempt += 1
        deadline = time.monotonic() + delay * (0.5 + random.random() / 2)
        rec = self.rec
        with rec.cv:
            was_closed = rec.closed
        while (left := deadline - time.monotonic()) > 0:
            if self._stop.is_set():
                raise _Stopped
            with rec.cv:
                if rec.closed and not was_closed:
                    return
                rec.cv.wait(min(left, 0.1))
        if self._stop.is_set():
            raise _Stopped

    def _failed(self, e: BucketError) -> None:
        rec = self.rec
        self.store.metrics.count("upload_attempts_failed")
        self.store.emit("attempt_failed", rec.recording_id, error=str(e), code=e.code, transient=e.transient)
        level = logging.WARNING if self._attempt < 3 else logging.ERROR
        log.log(level, "recording %s: upload attempt %d failed: %s", rec.recording_id, self._attempt + 1, e)
        if e.code in FAIL_FAST_CODES:
            self.fail_fast_error = str(e) if e.code in str(e) else f"{e} ({e.code})"
            if rec.stop_time is not None:
                self.store.fail_outcome(rec, self.fail_fast_error)

    def _run(self) -> None:
        rec = self.rec
        # recovered recordings take turns (a slot per attempt, not across the backoff sleeps)
        slot = self.store.recovery_slots if self.recovered else contextlib.nullcontext()
        first = self.recovered
        try:
            while not self._stop.is_set():
                try:
                    with slot:
                        if first:
                            self._cleanup_stale(list_orphans=True)
                            first = False
                        if self._step():
                            return
                except BucketError as e:
                    self._failed(e)
                    self._backoff()
                except OSError as e:  # reading the spool file
                    log.error("recording %s: cannot read spooled file: %s", rec.recording_id, e)
                    self.store.metrics.count("upload_attempts_failed")
                    self._backoff()
        except _Stopped:
            pass
        except Exception:
            if self._stop.is_set():  # e.g. the I/O pool is already shut down
                log.info("recording %s: upload interrupted by the stop; it stays spooled", rec.recording_id)
            else:
                log.exception("recording %s: upload job crashed; the recording stays spooled", rec.recording_id)
        finally:
            self.store.job_done(self)

    # ------------------------------------------------------------------ steps
    def _step(self) -> bool:
        """Do the next thing; True when the recording is confirmed and removed from the spool."""
        rec = self.rec
        with rec.cv:
            closed = rec.closed
            if not closed:
                ready = self._streamable()
                if not ready:
                    rec.cv.wait(0.5)
                    return False
        if not closed:
            self._stream_part(ready[0])
            self._attempt = 0
            self.fail_fast_error = None
            return False
        self._finalize()
        return True

    def _streamable(self) -> list[Part]:
        rec = self.rec
        if not self.backend.supports_multipart:
            return []
        done = (p.number for p in rec.sidecar.parts)
        return streamable_parts(rec.synced_bytes, self.holdback, self.cfg.part_size, done)

    def _ensure_upload(self, final_metadata: bool) -> str:
        sc = self.rec.sidecar
        if sc.upload_id is None:
            log.debug("recording %s: creating multipart upload", self.rec.recording_id)
            meta = dict(sc.metadata)
            if not final_metadata:
                meta.pop("recording-duration", None)
            upload_id = self.backend.create_multipart_upload(sc.bucket, sc.key, sc.content_type, meta)
            with self.rec.cv:
                sc.upload_id = upload_id
                sc.upload_metadata_final = final_metadata
                sc.parts = []
            if final_metadata:
                # the recording is stopped and its parts go out now: do not make them wait for the disk
                # (a crash before this lands leaves an upload that start-up recovery finds and aborts)
                try:
                    self.store.io_pool.submit(self._save)
                except RuntimeError:  # the store is stopping
                    self._save()
            else:
                self._save()
            self.store.emit("upload_created", self.rec.recording_id, upload_id=upload_id)
        assert sc.upload_id is not None
        return sc.upload_id

    def _send_part(self, upload_id: str, part: Part) -> str:
        with FileSlice(self.rec.path, part.offset, part.size) as body:
            etag = self.backend.upload_part(self.rec.bucket, self.rec.key, upload_id, part.number, body)
        log.debug("recording %s: part %d sent", self.rec.recording_id, part.number)
        return etag

    def _record_part(self, part: Part, etag: str) -> None:
        sc = self.rec.sidecar
        with self.rec.cv:
            sc.parts = [p for p in sc.parts if p.number != part.number]
            sc.parts.append(PartRecord(part.number, part.offset, part.size, etag))
            sc.parts.sort(key=lambda p: p.number)

    def _stream_part(self, part: Part) -> None:
        with self._multipart(final_metadata=False) as upload_id:
            etag = self._send_part(upload_id, part)
        self._record_part(part, etag)
        self._save()
        self.store.emit("part_uploaded", self.rec.recording_id, part=part.number, size=part.size)

    def _forget_upload(self, abort: bool) -> None:
        """Stop using the current multipart upload (abort it now, or remember to)."""
        sc = self.rec.sidecar
        upload_id = sc.upload_id
        with self.rec.cv:
            sc.upload_id = None
            sc.parts = []
            sc.upload_metadata_final = False
            if abort and upload_id is not None:
                sc.stale_uploads.append(upload_id)
        self._save()
        if abort:
            self._cleanup_stale(list_orphans=False)

    def _cleanup_stale(self, list_orphans: bool) -> None:
        """Abort multipart uploads of this key that are no longer used (best effort)."""
        sc = self.rec.sidecar
        stale = list(sc.stale_uploads)
        if list_orphans and self.backend.supports_multipart:
            # created just before a crash, before the sidecar could name it
            try:
                stale += [u for u in self.backend.list_multipart_uploads(sc.bucket, sc.key)
                          if u != sc.upload_id and u not in stale]
            except BucketError as e:
                log.info("recording %s: cannot list multipart uploads: %s", self.rec.recording_id, e)
        aborted = []
        for upload_id in stale:
            try:
                self.backend.abort_multipart_upload(sc.bucket, sc.key, upload_id)
                aborted.append(upload_id)
                log.info("recording %s: aborted unused multipart upload %s", self.rec.recording_id, upload_id)
            except BucketError as e:
                log.info("recording %s: cannot abort multipart upload %s yet: %s", self.rec.recording_id,
                         upload_id, e)
        if aborted or stale != sc.stale_uploads:
            with self.rec.cv:
                sc.stale_uploads = [u for u in stale if u not in aborted]
            self._save()

    @contextlib.contextmanager
    def _multipart(self, final_metadata: bool) -> Iterator[str]:
        """The multipart upload to use, created if needed, with its clean-up: aborted (now, or later from
        the sidecar) when it turns out to be unusable; kept across transient failures and across
        failures that are not its fault (credentials, bucket), so that the parts sent are not lost."""
        upload_id = self._ensure_upload(final_metadata)
        try:
            yield upload_id
        except NoSuchUpload:
            self._forget_upload(abort=False)  # gone already
            raise
        except PermanentBucketError as e:
            if e.code in FAIL_FAST_CODES:
                raise  # not the upload's fault: keep it for the next attempt
            # e.g. InvalidPart / EntityTooSmall: start over with a fresh upload
            self._forget_upload(abort=True)
            raise

    def _parallel(self, calls: Sequence[Callable[[], str]]) -> list[str]:
        if len(calls) == 1:
            return [calls[0]()]
        futures: list[Future[str]] = [self.store.io_pool.submit(c) for c in calls]
        results: list[str] = []
        first_error: BaseException | None = None
        for f in futures:
            try:
                results.append(f.result())
            except BaseException as e:
                first_error = first_error or e
                results.append("")
        if first_error is not None:
            raise first_error
        return results

    def _finalize(self) -> None:
        rec = self.rec
        sc = rec.sidecar
        if sc.state == State.UPLOADED:
            self._done(None)
            return
        assert sc.size is not None
        size = sc.size
        if sc.stale_uploads:
            self._cleanup_stale(list_orphans=False)
        complete_at: float | None = None
        if self._complete_size == size:
            # an earlier attempt completed the object; a later step (metadata, ACL, HEAD) failed
            self._after_complete(size, self._metadata_final)
            return
        if single_put(size, self.cfg.part_size) or not self.backend.supports_multipart:
            if sc.upload_id is not None:
                self._forget_upload(abort=True)
            with FileSlice(rec.path, 0, size) as body:
                self.backend.put_object(sc.bucket, sc.key, body, sc.content_type, sc.metadata)
            complete_at = time.monotonic()
            metadata_final = True
        else:
            with self._multipart(final_metadata=True) as upload_id:
                uploaded = {p.number: (p.offset, p.size) for p in sc.parts}
                plan = plan_final(size, self.cfg.part_size, uploaded)
                calls = [functools.partial(self._send_part, upload_id, p) for p in plan.upload]
                log.debug("recording %s: sending parts %s of %d bytes", rec.recording_id,
                          [p.number for p in plan.upload], size)
                etags = self._parallel(calls)
                log.debug("recording %s: parts sent", rec.recording_id)
                for p, etag in zip(plan.upload, etags, strict=True):
                    self._record_part(p, etag)  # in memory: a crash now only costs sending them again
                by_number = {p.number: p.etag for p in sc.parts}
                try:
                    self.backend.complete_multipart_upload(sc.bucket, sc.key, upload_id,
                                                           [(n, by_number[n]) for n in plan.numbers])
                except NoSuchUpload:
                    # completed by an attempt whose answer was lost (or before a crash)?
                    info = self.backend.head_object(sc.bucket, sc.key)
                    if info is None or info.size != size:
                        raise
            complete_at = time.monotonic()
            metadata_final = sc.upload_metadata_final
        self._attempt = 0
        self._complete_size, self._metadata_final = size, metadata_final
        log.debug("recording %s: object complete", rec.recording_id)
        self._latency("object_complete", "complete", complete_at)
        self._after_complete(size, metadata_final)

    def _after_complete(self, size: int, metadata_final: bool) -> None:
        rec = self.rec
        sc = rec.sidecar
        if not metadata_final:
            try:
                self.backend.replace_metadata(sc.bucket, sc.key, sc.content_type, sc.metadata)
            except PermanentBucketError as e:
                log.warning("recording %s: cannot set the final metadata (recording-duration): %s",
                            rec.recording_id, e)
        if sc.acl:
            try:
                self.backend.put_object_acl(sc.bucket, sc.key, sc.acl)
            except PermanentBucketError as e:
                if e.code not in ACL_NOT_SUPPORTED:
                    raise
        self._confirm(size)

    def _confirm(self, size: int) -> None:
        sc = self.rec.sidecar
        try:
            info = self.backend.head_object(sc.bucket, sc.key)
        except PermanentBucketError as e:
            if e.code != "AccessDenied" and e.status != 403:
                raise
            # a bucket that grants PutObject but not GetObject: the successful upload is our confirmation
            log.info("recording %s: HEAD not permitted; trusting the upload's response", self.rec.recording_id)
        else:
            if info is None:
                self._complete_size = None  # gone (deleted meanwhile?): send it again
                raise TransientBucketError(f"s3://{sc.bucket}/{sc.key} not visible after upload", "NotVisible")
            if info.size != size:
                # something else wrote the key, or the upload went wrong: send it again from scratch
                self._complete_size = None
                with self.rec.cv:
                    sc.upload_id, sc.parts = None, []
                self._save()
                raise TransientBucketError(f"s3://{sc.bucket}/{sc.key} has {info.size} bytes, expected {size}",
                                           "SizeMismatch")
        self._done(time.monotonic())

    def _latency(self, event: str, kind: str, at: float) -> None:
        stop = self.rec.stop_time
        if stop is not None and not self.recovered:
            self.store.metrics.latency(kind, at - stop)
            self.store.emit(event, self.rec.recording_id, latency=at - stop)
        else:
            self.store.emit(event, self.rec.recording_id, latency=None)

    def _done(self, confirmed_at: float | None) -> None:
        rec = self.rec
        sc = rec.sidecar
        if confirmed_at is not None:
            self._latency("confirmed", "confirmed", confirmed_at)
        self.store.metrics.count("uploads_confirmed")
        if rec.resolve(rec.success()):
            self.store.emit("outcome", rec.recording_id, ok=True)
        else:
            log.info("recording %s delivered to s3://%s/%s after its outcome was reported", rec.recording_id,
                     sc.bucket, sc.key)
        with rec.cv:
            sc.state = State.UPLOADED
        self._save()
        sc.remove(self.store.spool_dir)
        log.info("recording %s confirmed in %s s3://%s/%s (%s bytes)", rec.recording_id, self.backend.describe(),
                 sc.bucket, sc.key, sc.size)
