"""Object keys and destinations for recordings: validation and naming (pure, no I/O).

RecordAudio (SPEC §4): ``RecordingDestination = {Type: "S3", BucketName, Prefix?}``; the object key is
``<Prefix>/<uuid4>.wav`` (a trailing ``/`` on Prefix is not doubled) or ``<uuid4>.wav`` without Prefix.
Prefix: at most 979 characters of S3's safe set (``0-9 a-z A-Z ! - _ . * ' ( ) /``); a ``..`` segment,
a leading ``/`` and control characters are invalid. Every invalid destination gets the one message
:data:`INVALID_RECORDING_DESTINATION`.

StartCallRecording (CHIME-NOTES §1.6): ``Destination = {Type: "S3", Location: "bucket[/prefix]"}``; the key
is ``<prefix or Amazon-Chime-SMA-Call-Recordings>/YYYY/MM/DD/YYYY-MM-DD-hh-mm-ss-mmm_<TransactionId>_<CallId>.wav``
(UTC).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

INVALID_RECORDING_DESTINATION = "RecordingDestination parameter value is invalid."
INVALID_CALL_RECORDING_DESTINATION = "Destination parameter value is invalid."
ERROR_TYPE = "InvalidActionParameter"

MAX_PREFIX_CHARS = 979
MAX_KEY_BYTES = 1024
CALL_RECORDINGS_PREFIX = "Amazon-Chime-SMA-Call-Recordings"

_PREFIX_CHARS = re.compile(r"[0-9A-Za-z!\-_.*'()/]*")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_ID_CHARS = re.compile(r"[0-9A-Za-z\-_.]+")


class InvalidDestination(ValueError):
    """A recording destination that the action must reject (ACTION_FAILED ``InvalidActionParameter``)."""

    error_type = ERROR_TYPE

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # what exactly was wrong, for the log (not for the handler)


@dataclass(frozen=True)
class RecordingDestination:
    bucket: str
    prefix: str | None

    def new_key(self, recording_id: uuid.UUID | None = None) -> str:
        return recording_key(self.prefix, recording_id)


def prefix_problem(prefix: object) -> str | None:
    """Why ``prefix`` is not a valid RecordAudio Prefix, or None when it is."""
    if not isinstance(prefix, str):
        return "Prefix is not a string"
    if len(prefix) > MAX_PREFIX_CHARS:
        return f"Prefix is longer than {MAX_PREFIX_CHARS} characters"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in prefix):
        return "Prefix contains a control character"
    if not _PREFIX_CHARS.fullmatch(prefix):
        return "Prefix contains a character outside S3's safe set"
    if prefix.startswith("/"):
        return "Prefix starts with '/'"
    if ".." in prefix.split("/"):
        return "Prefix contains a '..' segment"
    return None


def bucket_problem(name: object) -> str | None:
    """Why ``name`` is not a valid S3 bucket name (general purpose buckets), or None."""
    if not isinstance(name, str):
        return "BucketName is not a string"
    if not _BUCKET.fullmatch(name):
        return "BucketName must be 3-63 characters of a-z 0-9 . - starting and ending with a letter or digit"
    if ".." in name or ".-" in name or "-." in name:
        return "BucketName has adjacent periods or a period next to a hyphen"
    if _IPV4.fullmatch(name):
        return "BucketName is formatted as an IP address"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return "BucketName uses a reserved prefix or suffix"
    return None


def validate_prefix(prefix: object) -> str | None:
    """The Prefix to use (None for absent or empty); raises :class:`InvalidDestination`."""
    if prefix is None or prefix == "":
        return None
    problem = prefix_problem(prefix)
    if problem:
        raise InvalidDestination(INVALID_RECORDING_DESTINATION, problem)
    assert isinstance(prefix, str)
    return prefix


def parse_recording_destination(value: object) -> RecordingDestination:
    """Validate a RecordAudio ``RecordingDestination``; raises :class:`InvalidDestination`."""

    def bad(reason: str) -> InvalidDestination:
        return InvalidDestination(INVALID_RECORDING_DESTINATION, reason)

    if not isinstance(value, Mapping):
        raise bad("RecordingDestination is not an object")
    if value.get("Type") != "S3":
        raise bad("RecordingDestination.Type is not 'S3'")
    if "BucketName" not in value:
        raise bad("RecordingDestination.BucketName is missing")
    bucket = value["BucketName"]
    problem = bucket_problem(bucket)
    if problem:
        raise bad(problem)
    prefix = validate_prefix(value.get("Prefix"))
    return RecordingDestination(bucket, prefix)


def recording_destination_error(value: object) -> str | None:
    """The handler-facing error message for an invalid RecordingDestination, or None when it is valid."""
    try:
        parse_recording_destination(value)
    except InvalidDestination as e:
        return e.message
    return None


def recording_key(prefix: str | None, recording_id: uuid.UUID | None = None) -> str:
    """``<Prefix>/<uuid4>.wav`` (trailing ``/`` not doubled) or ``<uuid4>.wav``. ``prefix`` must be valid."""
    name = f"{recording_id or uuid.uuid4()}.wav"
    prefix = validate_prefix(prefix)
    if prefix is None:
        return name
    return f"{prefix.rstrip('/')}/{name}" if prefix.rstrip("/") else name


# ----------------------------------------------------------------------------- StartCallRecording
@dataclass(frozen=True)
class CallRecordingLocation:
    bucket: str
    prefix: str  # without trailing '/'; the default prefix when the Location names only a bucket

    def key(self, started_at: datetime, transaction_id: str, call_id: str) -> str:
        return call_recording_key(self.prefix, started_at, transaction_id, call_id)


def parse_call_recording_destination(value: object) -> CallRecordingLocation:
    """Validate a StartCallRecording ``Destination`` (``{Type: "S3", Location: "bucket[/prefix]"}``)."""

    def bad(reason: str) -> InvalidDestination:
        return InvalidDestination(INVALID_CALL_RECORDING_DESTINATION, reason)

    if not isinstance(value, Mapping):
        raise bad("Destination is not an object")
    if value.get("Type") != "S3":
        raise bad("Destination.Type is not 'S3'")
    location = value.get("Location")
    if not isinstance(location, str):
        raise bad("Destination.Location is missing or not a string")
    bucket, _, prefix = location.partition("/")
    problem = bucket_problem(bucket)
    if problem:
        raise bad(problem)
    if prefix:
        problem = prefix_problem(prefix)
        if problem:
            raise bad(problem)
    prefix = prefix.rstrip("/") or CALL_RECORDINGS_PREFIX
    return CallRecordingLocation(bucket, prefix)


def call_recording_key(prefix: str, started_at: datetime, transaction_id: str, call_id: str) -> str:
    """``<prefix>/YYYY/MM/DD/YYYY-MM-DD-hh-mm-ss-mmm_<TransactionId>_<CallId>.wav`` in UTC."""
    for what, ident in (("TransactionId", transaction_id), ("CallId", call_id)):
        if not _ID_CHARS.fullmatch(ident):
            raise InvalidDestination(INVALID_CALL_RECORDING_DESTINATION, f"{what} {ident!r} cannot be used in a key")
    t = started_at.astimezone(UTC) if started_at.tzinfo else started_at.replace(tzinfo=UTC)
    stamp = f"{t:%Y-%m-%d-%H-%M-%S}-{t.microsecond // 1000:03d}"
    key = f"{prefix.rstrip('/')}/{t:%Y/%m/%d}/{stamp}_{transaction_id}_{call_id}.wav"
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidDestination(INVALID_CALL_RECORDING_DESTINATION, "the key would be longer than 1024 bytes")
    return key
