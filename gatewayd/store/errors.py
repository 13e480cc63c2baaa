"""Errors of the recording store."""

from __future__ import annotations

import errno as _errno
import os

UPLOAD_FAILED_MESSAGE = "Error occurred while uploading recording to S3 bucket."
UPLOAD_FAILED_ERROR_TYPE = "InvalidActionParameter"
SPOOL_FAILED_ERROR_TYPE = "SystemException"


class StoreError(Exception):
    """Base class of the store's errors."""


class SpoolError(StoreError):
    """The local spool is full or cannot be written: the recording cannot be (fully) kept on disk.

    ``errno`` is the operating system's error number when there is one (ENOSPC, EFBIG, ENOTDIR, EACCES,
    EROFS, EIO ...); ``message`` is a sentence for ACTION_FAILED's ErrorMessage.
    """

    def __init__(self, detail: str, errno: int | None = None, path: str | None = None) -> None:
        self.errno = errno
        self.path = path
        reason = os.strerror(errno) if errno else detail
        self.message = f"Recording could not be written to the local spool: {reason}."
        super().__init__(f"{detail} ({path})" if path else detail)

    @classmethod
    def from_oserror(cls, what: str, e: OSError, path: str | os.PathLike[str] | None = None) -> SpoolError:
        p = os.fspath(path) if path is not None else e.filename
        return cls(f"{what}: {e.strerror or e}", e.errno, None if p is None else str(p))


class SpoolFull(SpoolError):
    """The spool's configured limit (bytes or free space) is reached; no new recording is accepted."""

    def __init__(self, detail: str, path: str | None = None) -> None:
        super().__init__(detail, _errno.ENOSPC, path)


class InvalidKey(StoreError, ValueError):
    """The object key cannot be used with this bucket backend."""


class BucketError(StoreError):
    """A bucket operation failed. ``code`` is S3's error code (or a local equivalent)."""

    transient = False

    def __init__(self, message: str, code: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class TransientBucketError(BucketError):
    """Worth retrying soon: connection refused/reset, timeouts, 5xx, throttling."""

    transient = True


class PermanentBucketError(BucketError):
    """Retrying will not help until someone changes something: no such bucket, access denied, bad keys."""


class NoSuchUpload(PermanentBucketError):
    """The multipart upload is gone (aborted, completed, or lost by the server): start a new one."""
