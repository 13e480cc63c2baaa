"""Bucket backends: the operations the uploader needs, for S3 (``gatewayd.store.s3``) and a local directory.

Every backend method may raise :class:`~gatewayd.store.errors.TransientBucketError` (retry soon) or
:class:`~gatewayd.store.errors.PermanentBucketError` (retrying needs a change elsewhere). Backends are
called from uploader threads, never from the media path, and are thread-safe.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gatewayd.sma.keys import MAX_KEY_BYTES
from gatewayd.store.config import BackendConfig, LocalDirectoryConfig, S3EndpointConfig
from gatewayd.store.errors import BucketError, InvalidKey, PermanentBucketError, TransientBucketError

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None


class FileSlice(io.RawIOBase):
    """A read-only, seekable window ``[offset, offset + length)`` of a file: a request body that is read
    from disk as it is sent (memory stays bounded however large the part)."""

    def __init__(self, path: str | os.PathLike[str], offset: int, length: int) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.offset = offset
        self.length = length
        self._pos = 0
        self._fd = os.open(self.path, os.O_RDONLY)
        size = os.fstat(self._fd).st_size
        if offset + length > size:
            os.close(self._fd)
            raise ValueError(f"{self.path}: slice [{offset}, {offset + length}) is beyond the end ({size})")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self.length

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.length}[whence]
        self._pos = min(max(base + pos, 0), self.length)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        left = self.length - self._pos
        n = left if size is None or size < 0 else min(size, left)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self.offset + self._pos)
        if len(data) < n:
            raise OSError(errno.EIO, f"{self.path} shrank while being uploaded")
        self._pos += n
        return data

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class BucketBackend(Protocol):
    supports_multipart: bool

    def describe(self) -> str: ...

    def check_key(self, key: str) -> None:
        """Raise :class:`~gatewayd.store.errors.InvalidKey` when ``key`` cannot name an object here."""

    def put_object(self, bucket: str, key: str, body: FileSlice, content_type: str,
                   metadata: Mapping[str, str]) -> None: ...

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None: ...

    def get_object(self, bucket: str, key: str) -> bytes: ...

    def put_object_acl(self, bucket: str, key: str, acl: str) -> None: ...

    def replace_metadata(self, bucket: str, key: str, content_type: str, metadata: Mapping[str, str]) -> None: ...

    def create_multipart_upload(self, bucket: str, key: str, content_type: str,
                                metadata: Mapping[str, str]) -> str: ...

    def upload_part(self, bucket: str, key: str, upload_id: str, part_number: int, body: FileSlice) -> str: ...

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str,
                                  parts: Sequence[tuple[int, str]]) -> None: ...

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None: ...

    def list_multipart_uploads(self, bucket: str, key: str) -> list[str]: ...

    def close(self) -> None: ...


def check_s3_key(key: str) -> None:
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(f"an object key is 1 to {MAX_KEY_BYTES} bytes long, got {len(key.encode())}")


# ------------------------------------------------------------------------------------ local directory
def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes | FileSlice) -> None:
    """Write ``path`` through a temporary file in the same directory: fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                data.seek(0)
                while chunk := data.read(CHUNK):
                    f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


class LocalDirectoryBucket:
    """Buckets as sub-directories of ``root``; keys are paths below them, written atomically.

    Content type, metadata and ACL are kept in ``<root>/.meta/<bucket>/<key>.json`` (a bucket name never
    starts with '.', so ``.meta`` is never a bucket).
    """

    supports_multipart = False

    def __init__(self, config: LocalDirectoryConfig) -> None:
        self.root = Path(config.root)
        self.create_buckets = config.create_buckets

    def describe(self) -> str:
        return f"local directory {self.root}"

    def check_key(self, key: str) -> None:
        check_s3_key(key)
        try:
            self._parts(key)
        except PermanentBucketError as e:
            raise InvalidKey(str(e)) from e

    def _bucket_dir(self, bucket: str, create: bool) -> Path:
        d = self.root / bucket
        if not d.is_dir():
            if not (create and self.create_buckets):
                raise PermanentBucketError(f"no such bucket {bucket!r} in {self.root}", "NoSuchBucket", 404)
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise self._oserror(f"cannot create bucket directory {d}", e) from e
        return d

    @staticmethod
    def _parts(key: str) -> list[str]:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts) or "\0" in key:
            raise PermanentBucketError(f"key {key!r} cannot be a path in a local bucket", "InvalidKey", 400)
        return parts

    def _paths(self, bucket: str, key: str, create: bool) -> tuple[Path, Path]:
        parts = self._parts(key)
        d = self._bucket_dir(bucket, create)
        return d.joinpath(*parts), self.root.joinpath(".meta", bucket, *parts[:-1], parts[-1] + ".json")

    @staticmethod
    def _oserror(what: str, e: OSError) -> BucketError:
        transient = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EINTR)
        cls = TransientBucketError if transient else PermanentBucketError
        return cls(f"{what}: {e.strerror or e}", errno.errorcode.get(e.errno or 0, "OSError"))

    def _read_meta(self, meta: Path) -> dict[str, object]:
        try:
            loaded = json.loads(meta.read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def put_object(self, bucket: str, key: str, body: FileSlice, content_type: str,
                   metadata: Mapping[str, str]) -> None:
        path, meta = self._paths(bucket, key, create=True)
        try:
            meta.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(meta, json.dumps({"ContentType": content_type, "Metadata": dict(metadata)}).encode())
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, body)
        except OSError as e:
            raise self._oserror(f"cannot write {path}", e) from e

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        path, meta = self._paths(bucket, key, create=False)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as e:
            raise self._oserror(f"cannot stat {path}", e) from e
        m = self._read_meta(meta)
        ct = m.get("ContentType")
        md = m.get("Metadata")
        return ObjectInfo(size, ct if isinstance(ct, str) else None,
                          {str(k): str(v) for k, v in md.items()} if isinstance(md, dict) else {})

    def get_object(self, bucket: str, key: str) -> bytes:
        path, _ = self._paths(bucket, key, create=False)
        try:
            return path.read_bytes()
        except FileNotFoundError as e:
            raise PermanentBucketError(f"no such key {key!r} in bucket {bucket!r}", "NoSuchKey", 404) from e
        except OSError as e:
            raise self._oserror(f"cannot read {path}", e) from e

    def get_acl(self, bucket: str, key: str) -> str | None:
        _, meta = self._paths(bucket, key, create=False)
        acl = self._read_meta(meta).get("ACL")
        return acl if isinstance(acl, str) else None

    def _update_meta(self, bucket: str, key: str, **fields: object) -> None:
        path, meta = self._paths(bucket, key, create=False)
        if not path.exists():
            raise PermanentBucketError(f"no such key {key!r} in bucket {bucket!r}", "NoSuchKey", 404)
        m = self._read_meta(meta)
        m.update(fields)
        try:
            meta.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(meta, json.dumps(m).encode())
        except OSError as e:
            raise self._oserror(f"cannot write {meta}", e) from e

    def put_object_acl(self, bucket: str, key: str, acl: str) -> None:
        self._update_meta(bucket, key, ACL=acl)

    def replace_metadata(self, bucket: str, key: str, content_type: str, metadata: Mapping[str, str]) -> None:
        self._update_meta(bucket, key, ContentType=content_type, Metadata=dict(metadata))

    def _no_multipart(self) -> BucketError:
        return PermanentBucketError("a local directory bucket has no multipart uploads", "NotImplemented", 501)

    def create_multipart_upload(self, bucket: str, key: str, content_type: str,
                                metadata: Mapping[str, str]) -> str:
        raise self._no_multipart()

    def upload_part(self, bucket: str, key: str, upload_id: str, part_number: int, body: FileSlice) -> str:
        raise self._no_multipart()

    def complete_multipart_upload(self, bucket: str, key: str, upload_id: str,
                                  parts: Sequence[tuple[int, str]]) -> None:
        raise self._no_multipart()

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        raise self._no_multipart()

    def list_multipart_uploads(self, bucket: str, key: str) -> list[str]:
        return []

    def close(self) -> None:
        pass


def open_backend(config: BackendConfig) -> BucketBackend:
    """The backend for a bucket configuration (boto3 is imported only for an S3 endpoint)."""
    if isinstance(config, LocalDirectoryConfig):
        return LocalDirectoryBucket(config)
    if isinstance(config, S3EndpointConfig):
        from gatewayd.store.s3 import S3Bucket

        return S3Bucket(config)
    raise TypeError(f"unknown bucket backend configuration {config!r}")
