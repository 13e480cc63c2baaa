"""Configuration of the recording store (typed, frozen).

Buckets are configured by name. Each name maps to a backend: an S3 endpoint (AWS, or any S3-compatible
server through ``endpoint_url``; credentials from the standard chain unless given) or a local directory
where the bucket is a sub-directory and the key a path below it. A bucket name that is not listed goes
to ``default_backend`` (a local directory: the embedded default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last


@dataclass(frozen=True)
class LocalDirectoryConfig:
    """A directory of buckets: ``<root>/<bucket>/<key>``; metadata and ACL in ``<root>/.meta/<bucket>/<key>.json``."""

    root: Path
    create_buckets: bool = True  # False: a missing sub-directory is NoSuchBucket, like S3


@dataclass(frozen=True)
class S3EndpointConfig:
    """An S3 endpoint reached with boto3.

    ``endpoint_url`` None means AWS. Credentials come from boto3's standard chain (environment, shared
    files, ``profile_name``, instance/container roles); ``access_key_id``/``secret_access_key`` are for
    S3-compatible servers that have their own keys.
    """

    endpoint_url: str | None = None
    region_name: str | None = None
    profile_name: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    verify: bool | str = True
    connect_timeout: float = 3.0
    read_timeout: float = 30.0
    max_connections: int = 16


BackendConfig = LocalDirectoryConfig | S3EndpointConfig


def _frozen_map(m: Mapping[str, BackendConfig] | None = None) -> Mapping[str, BackendConfig]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True)
class StoreConfig:
    spool_dir: Path
    buckets: Mapping[str, BackendConfig] = field(default_factory=_frozen_map)
    default_backend: BackendConfig | None = None  # None: unknown bucket names are NoSuchBucket
    # outcome: failure when the object is not confirmed this long after the recording stopped (SPEC §4)
    upload_wait: float = 10.0
    # multipart: recordings larger than part_size are streamed in parts of part_size (>= 5 MiB)
    part_size: int = MIN_PART_SIZE
    # audio kept back from streamed parts, so that trimming the end (terminator tone) never
    # invalidates a part already uploaded
    holdback_seconds: float = 5.0
    ring_frames: int = 500  # media path -> writer ring: 10 s of 20 ms frames
    writer_interval: float = 0.01  # the writer drains the rings this often
    fsync_interval: float = 1.0  # and fsyncs at least this often (or every fsync_bytes)
    fsync_bytes: int = 1 * MIB
    retry_initial: float = 0.25  # exponential backoff between attempts, with jitter
    retry_max: float = 30.0
    spool_max_bytes: int | None = None  # refuse new recordings when the spool holds this much
    spool_min_free_bytes: int = 16 * MIB  # or when the file system has less free space than this
    upload_threads: int = 4  # parallel requests of one upload (finalising part 1 and the tail)
    recovery_concurrency: int = 2  # spooled recordings uploaded at once after start-up

    def __post_init__(self) -> None:
        if self.part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part size)")
        if self.upload_wait <= 0:
            raise ValueError("upload_wait must be positive")
        if self.ring_frames < 2:
            raise ValueError("ring_frames must be at least 2")
        if self.retry_initial <= 0 or self.retry_max < self.retry_initial:
            raise ValueError("retry_initial must be positive and retry_max >= retry_initial")
        object.__setattr__(self, "buckets", _frozen_map(self.buckets))
        object.__setattr__(self, "spool_dir", Path(self.spool_dir))

    def backend_for(self, bucket: str) -> BackendConfig | None:
        return self.buckets.get(bucket, self.default_backend)

    @classmethod
    def embedded(cls, state_dir: Path, **kw: Any) -> StoreConfig:
        """The embedded default: spool in ``<state_dir>/spool``, every bucket a sub-directory of
        ``<state_dir>/buckets``."""
        return cls(spool_dir=Path(state_dir) / "spool",
                   default_backend=LocalDirectoryConfig(Path(state_dir) / "buckets"), **kw)


def _backend_from(name: str, raw: object) -> BackendConfig:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{name}: expected a mapping with 'type: s3' or 'type: local'")
    d = dict(raw)
    kind = d.pop("type", None)
    try:
        if kind == "local":
            return LocalDirectoryConfig(root=Path(d.pop("root")), **d)
        if kind == "s3":
            return S3EndpointConfig(**d)
    except KeyError as e:
        raise ValueError(f"{name}: missing {e.args[0]!r}") from e
    except TypeError as e:
        raise ValueError(f"{name}: {e}") from e
    raise ValueError(f"{name}: type must be 's3' or 'local', got {kind!r}")


def store_config_from_dict(raw: Mapping[str, Any]) -> StoreConfig:
    """Build the store's configuration from a mapping (e.g. the ``store:`` section of the YAML config)::

        spool_dir: /var/spool/gatewayd/recordings
        upload_wait: 10
        buckets:
          my-recordings: {type: s3, region_name: eu-west-1}
          lab: {type: s3, endpoint_url: "http://nas.local:8333", access_key_id: ..., secret_access_key: ...}
        default: {type: local, root: /var/lib/gatewayd/buckets}

    Unknown keys are errors (ValueError naming them).
    """
    d = dict(raw)
    try:
        spool = Path(d.pop("spool_dir"))
    except KeyError as e:
        raise ValueError("store: 'spool_dir' is required") from e
    buckets_raw = d.pop("buckets", {}) or {}
    if not isinstance(buckets_raw, Mapping):
        raise ValueError("store.buckets: expected a mapping of bucket name to backend")
    buckets = {str(k): _backend_from(f"store.buckets.{k}", v) for k, v in buckets_raw.items()}
    default_raw = d.pop("default", None)
    default = None if default_raw is None else _backend_from("store.default", default_raw)
    try:
        return StoreConfig(spool_dir=spool, buckets=buckets, default_backend=default, **d)
    except TypeError as e:
        raise ValueError(f"store: {e}") from e
