"""The durable state of a spooled recording: ``<spool>/<id>.json`` next to ``<spool>/<id>.wav``.

Written atomically (temporary file, fsync, rename, fsync of the directory) at every change that matters
for recovery: opened, closed (final length), multipart upload created, part uploaded, uploaded. At
start-up every sidecar not yet confirmed is picked up again: the WAV header is repaired when the
recording was never closed, and the upload resumes (or restarts) from what the sidecar says.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from gatewayd.store.buckets import write_atomically

VERSION = 1


class State(StrEnum):
    RECORDING = "recording"  # the WAV is being written; its header sizes are placeholders
    CLOSED = "closed"  # the WAV is final (header patched, fsynced); upload pending
    UPLOADED = "uploaded"  # confirmed in the bucket; spool files about to be removed


@dataclass
class PartRecord:
    number: int
    offset: int
    size: int
    etag: str


@dataclass
class Sidecar:
    recording_id: str
    bucket: str
    key: str
    channels: int
    sample_rate: int
    metadata: dict[str, str]
    content_type: str = "audio/wav"
    acl: str | None = "bucket-owner-full-control"
    state: State = State.RECORDING
    created: float = 0.0  # wall-clock time the recording was opened (for logs)
    samples: int | None = None  # samples per channel, once closed
    size: int | None = None  # bytes of the final WAV, once closed
    spool_error: str | None = None  # the spool could not take all the audio (kept what it could)
    upload_id: str | None = None
    upload_metadata_final: bool = False  # the multipart upload was created with the final metadata
    parts: list[PartRecord] = field(default_factory=list)
    stale_uploads: list[str] = field(default_factory=list)  # multipart upload ids to abort
    version: int = VERSION

    # ------------------------------------------------------------------ files
    @staticmethod
    def path_for(spool: Path, recording_id: str) -> Path:
        return spool / f"{recording_id}.json"

    @staticmethod
    def wav_for(spool: Path, recording_id: str) -> Path:
        return spool / f"{recording_id}.wav"

    def to_bytes(self) -> bytes:
        data = asdict(self)
        data["state"] = str(self.state)
        return json.dumps(data, indent=1).encode()

    def save(self, spool: Path, data: bytes | None = None) -> None:
        """Write the sidecar atomically (``data``: a snapshot taken earlier with :meth:`to_bytes`)."""
        write_atomically(self.path_for(spool, self.recording_id), self.to_bytes() if data is None else data)

    @classmethod
    def load(cls, path: Path) -> Sidecar:
        """Read a sidecar; raises ValueError when it is not one."""
        try:
            raw: Any = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: unreadable sidecar: {e}") from e
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: object, where: str = "sidecar") -> Sidecar:
        if not isinstance(raw, Mapping) or raw.get("version") != VERSION:
            raise ValueError(f"{where}: not a version {VERSION} recording sidecar")
        try:
            parts = [PartRecord(int(p["number"]), int(p["offset"]), int(p["size"]), str(p["etag"]))
                     for p in raw.get("parts", [])]
            meta = raw.get("metadata", {})
            return cls(
                recording_id=str(raw["recording_id"]),
                bucket=str(raw["bucket"]),
                key=str(raw["key"]),
                channels=int(raw["channels"]),
                sample_rate=int(raw["sample_rate"]),
                metadata={str(k): str(v) for k, v in meta.items()},
                content_type=str(raw.get("content_type", "audio/wav")),
                acl=None if raw.get("acl") is None else str(raw["acl"]),
                state=State(raw.get("state", State.RECORDING)),
                created=float(raw.get("created", 0.0)),
                samples=None if raw.get("samples") is None else int(raw["samples"]),
                size=None if raw.get("size") is None else int(raw["size"]),
                spool_error=None if raw.get("spool_error") is None else str(raw["spool_error"]),
                upload_id=None if raw.get("upload_id") is None else str(raw["upload_id"]),
                upload_metadata_final=bool(raw.get("upload_metadata_final", False)),
                parts=parts,
                stale_uploads=[str(u) for u in raw.get("stale_uploads", [])],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{where}: malformed sidecar: {e}") from e

    def remove(self, spool: Path) -> None:
        """Delete the WAV first, then the sidecar (a sidecar without its WAV is recognised at start-up)."""
        for p in (self.wav_for(spool, self.recording_id), self.path_for(spool, self.recording_id)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
