"""Recording store: recordings spooled to disk, then streamed to a bucket (S3 or a local directory).

The public API (see :mod:`gatewayd.store.store` for the life cycle):

* :class:`RecordingStore` — ``start()`` (with start-up recovery), ``open_recording(...)``, ``stop()``,
  ``wait_idle()``, ``backend_for(bucket)``, ``metrics``;
* :class:`Recording` — ``put(samples)`` on the media path, ``finish(trim_samples, cut_at)`` →
  ``Future[RecordingOutcome]``;
* :class:`StoreConfig`, :class:`S3EndpointConfig`, :class:`LocalDirectoryConfig`;
* keys and destinations: :mod:`gatewayd.sma.keys`;
* errors: :class:`SpoolError`, :class:`SpoolFull`, :class:`UnknownBucket`, :class:`InvalidKey`.
"""

from gatewayd.sma.keys import (
    INVALID_RECORDING_DESTINATION,
    CallRecordingLocation,
    InvalidDestination,
    RecordingDestination,
    parse_call_recording_destination,
    parse_recording_destination,
    recording_destination_error,
    recording_key,
)
from gatewayd.store.config import LocalDirectoryConfig, S3EndpointConfig, StoreConfig, store_config_from_dict
from gatewayd.store.errors import (
    SPOOL_FAILED_ERROR_TYPE,
    UPLOAD_FAILED_ERROR_TYPE,
    UPLOAD_FAILED_MESSAGE,
    InvalidKey,
    SpoolError,
    SpoolFull,
    StoreError,
)
from gatewayd.store.metrics import StoreEvent, StoreMetrics
from gatewayd.store.recording import Recording, RecordingOutcome
from gatewayd.store.store import ACL_BUCKET_OWNER_FULL_CONTROL, RecordingStore, UnknownBucket

__all__ = [
    "ACL_BUCKET_OWNER_FULL_CONTROL",
    "INVALID_RECORDING_DESTINATION",
    "SPOOL_FAILED_ERROR_TYPE",
    "UPLOAD_FAILED_ERROR_TYPE",
    "UPLOAD_FAILED_MESSAGE",
    "CallRecordingLocation",
    "InvalidDestination",
    "InvalidKey",
    "LocalDirectoryConfig",
    "Recording",
    "RecordingDestination",
    "RecordingOutcome",
    "RecordingStore",
    "S3EndpointConfig",
    "SpoolError",
    "SpoolFull",
    "StoreConfig",
    "StoreError",
    "StoreEvent",
    "StoreMetrics",
    "UnknownBucket",
    "parse_call_recording_destination",
    "parse_recording_destination",
    "recording_destination_error",
    "recording_key",
    "store_config_from_dict",
]
