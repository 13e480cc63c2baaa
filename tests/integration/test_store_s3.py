"""The recording store against a real S3-compatible server (SeaweedFS ``weed mini``, started by the suite)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gatewayd.store import RecordingStore, StoreConfig, StoreEvent, recording_key
from gatewayd.testing.seaweedfs import SeaweedS3
from tests.s3_fixtures import s3_store_backend
from tests.storehelp import feed, parse_wav, signal, stereo_signal

pytestmark = pytest.mark.integration

WAIT = 60.0
MIN = 8000 * 60


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[float, StoreEvent]] = []

    def __call__(self, e: StoreEvent) -> None:
        if e.name not in ("flushed", "synced"):
            self.items.append((time.monotonic(), e))

    def named(self, name: str, rid: str | None = None) -> list[tuple[float, StoreEvent]]:
        return [(t, e) for t, e in self.items if e.name == name and (rid is None or e.recording_id == rid)]


def make_store(tmp_path: Path, server: SeaweedS3, bucket: str, events: Events | None = None,
               **kw: Any) -> RecordingStore:
    backend = kw.pop("backend", None) or s3_store_backend(server)
    cfg = StoreConfig(spool_dir=tmp_path / "spool", buckets={bucket: backend}, retry_initial=0.1, retry_max=0.5,
                      spool_min_free_bytes=0, **kw)
    return RecordingStore(cfg, listener=events)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def store(tmp_path: Path, s3_bucket: tuple[SeaweedS3, str], events: Events) -> Iterator[RecordingStore]:
    server, bucket = s3_bucket
    s = make_store(tmp_path, server, bucket, events)
    s.start()
    yield s
    s.stop()


def check_object(server: SeaweedS3, bucket: str, key: str, expected: np.ndarray, tx: str, call: str) -> None:
    """Bytes, header, Content-Type, metadata and ACL of a delivered recording."""
    c = server.client()
    data = c.get_object(Bucket=bucket, Key=key)["Body"].read()
    channels, rate, got = parse_wav(data)
    assert (channels, rate) == (1 if expected.ndim == 1 else expected.shape[1], 8000)
    np.testing.assert_array_equal(got, expected)
    head = c.head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == "audio/wav"
    assert head["ContentLength"] == len(data)
    assert head["Metadata"] == {"transaction-id": tx, "call-id": call,
                                "recording-duration": f"{expected.shape[0] / 8000:.3f}"}
    grants = c.get_object_acl(Bucket=bucket, Key=key)["Grants"]
    assert any(g["Permission"] == "FULL_CONTROL" for g in grants), grants


def no_multipart_uploads_left(server: SeaweedS3, bucket: str) -> bool:
    return not server.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_short_recording_is_one_put_with_metadata_and_acl(store: RecordingStore, s3_bucket: tuple[SeaweedS3, str],
                                                          events: Events) -> None:
    server, bucket = s3_bucket
    key = recording_key("voicemail/")
    rec = store.open_recording(bucket, key, transaction_id="tx-1", call_id="call-1")
    x = signal(8000 * 7 + 33)
    feed(rec, x)
    out = rec.finish().result(WAIT)
    assert out.ok and (out.bucket, out.key, out.samples) == (bucket, key, len(x))
    check_object(server, bucket, key, x, "tx-1", "call-1")
    assert not events.named("upload_created")  # one PUT, no multipart upload
    assert store.wait_idle(WAIT) and list(store.spool_dir.iterdir()) == []


def test_long_recording_streams_parts_while_recording(store: RecordingStore, s3_bucket: tuple[SeaweedS3, str],
                                                       events: Events) -> None:
    server, bucket = s3_bucket
    key = recording_key("long")
    rec = store.open_recording(bucket, key, transaction_id="tx-2", call_id="call-2")
    x = signal(MIN * 17, seed=5)  # 16.3 MB: parts 2 and 3 are complete before the stop
    feed(rec, x)
    deadline = time.monotonic() + WAIT
    while len(events.named("part_uploaded", rec.recording_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    parts_before_stop = [e.fields["part"] for _, e in events.named("part_uploaded", rec.recording_id)]
    assert parts_before_stop == [2, 3]
    out = rec.finish().result(WAIT)
    assert out.ok and out.samples == len(x)
    check_object(server, bucket, key, x, "tx-2", "call-2")
    # the multipart ETag says how many parts made the object: 1 (header) + 2, 3 (streamed) + 4 (tail)
    assert server.client().head_object(Bucket=bucket, Key=key)["ETag"].strip('"').endswith("-4")
    assert no_multipart_uploads_left(server, bucket)
    (_t_complete, complete), = events.named("object_complete", rec.recording_id)
    assert isinstance(complete.fields["latency"], float)


def test_stereo_call_recording(store: RecordingStore, s3_bucket: tuple[SeaweedS3, str]) -> None:
    server, bucket = s3_bucket
    key = "Amazon-Chime-SMA-Call-Recordings/2024/01/02/2024-01-02-03-04-05-006_tx-3_call-3.wav"
    rec = store.open_recording(bucket, key, transaction_id="tx-3", call_id="call-3", channels=2)
    x = stereo_signal(MIN * 6, seed=9)  # 23 MB of stereo: multipart
    for i in range(0, len(x), 160):
        while len(rec.ring) > 200:
            time.sleep(0.001)
        assert rec.put_stereo(x[i:i + 160, 0], x[i:i + 160, 1])
    assert rec.finish().result(WAIT).ok
    check_object(server, bucket, key, x, "tx-3", "call-3")


def test_cut_back_into_streamed_parts(store: RecordingStore, s3_bucket: tuple[SeaweedS3, str],
                                      events: Events) -> None:
    server, bucket = s3_bucket
    rec = store.open_recording(bucket, "cut.wav", transaction_id="t", call_id="c")
    x = signal(MIN * 17, seed=6)
    feed(rec, x)
    deadline = time.monotonic() + WAIT
    while len(events.named("part_uploaded", rec.recording_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(events.named("part_uploaded", rec.recording_id)) == 2
    cut = MIN * 7 + 123  # inside part 2: parts 2 and 3 as streamed are not the object's any more
    out = rec.finish(cut_at=cut, trim_samples=100).result(WAIT)
    assert out.ok and out.samples == cut - 100
    check_object(server, bucket, "cut.wav", x[:cut - 100], "t", "c")
    assert no_multipart_uploads_left(server, bucket)


def test_wrong_credentials_are_refused_and_the_recording_waits_in_the_spool(
        tmp_path: Path, s3_bucket: tuple[SeaweedS3, str], events: Events) -> None:
    server, bucket = s3_bucket
    bad = s3_store_backend(server, secret_access_key="not-the-secret-key-at-all")
    store = make_store(tmp_path, server, bucket, events, backend=bad, upload_wait=30.0)
    store.start()
    x = signal(8000 * 2)
    try:
        rec = store.open_recording(bucket, "creds.wav", transaction_id="t", call_id="c")
        feed(rec, x)
        t0 = time.monotonic()
        out = rec.finish().result(WAIT)
        assert not out.ok and time.monotonic() - t0 < 30.0  # refused: reported without waiting
        assert out.error_type == "InvalidActionParameter"
        assert out.error_message == "Error occurred while uploading recording to S3 bucket."
        assert "SignatureDoesNotMatch" in (out.detail or "") or "InvalidAccessKeyId" in (out.detail or "")
    finally:
        store.stop()
    assert sorted(p.suffix for p in (tmp_path / "spool").iterdir()) == [".json", ".wav"]
    with pytest.raises(Exception, match=r"NoSuchKey|Not Found|404"):
        server.client().head_object(Bucket=bucket, Key="creds.wav")
    # fixed configuration, next start: recovered and delivered
    store = make_store(tmp_path, server, bucket)
    try:
        assert store.start() == [rec.recording_id]
        assert store.wait_idle(WAIT)
        check_object(server, bucket, "creds.wav", x, "t", "c")
        assert list((tmp_path / "spool").iterdir()) == []
    finally:
        store.stop()


def test_missing_bucket_fails_fast(store: RecordingStore, s3_server: SeaweedS3, tmp_path: Path) -> None:
    store2 = make_store(tmp_path / "b", s3_server, "no-such-bucket-here", upload_wait=30.0)
    store2.start()
    try:
        rec = store2.open_recording("no-such-bucket-here", "x.wav", transaction_id="t", call_id="c")
        rec.put(signal(160))
        out = rec.finish().result(WAIT)
        assert not out.ok and "NoSuchBucket" in (out.detail or "")
    finally:
        store2.stop()


def test_standard_credential_chain(tmp_path: Path, s3_bucket: tuple[SeaweedS3, str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server, bucket = s3_bucket
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    chain = s3_store_backend(server, access_key_id=None, secret_access_key=None, region_name=None)
    store = make_store(tmp_path, server, bucket, backend=chain)
    store.start()
    try:
        rec = store.open_recording(bucket, "chain.wav", transaction_id="t", call_id="c")
        x = signal(4000)
        feed(rec, x)
        assert rec.finish().result(WAIT).ok
        check_object(server, bucket, "chain.wav", x, "t", "c")
    finally:
        store.stop()


def test_orphan_and_unusable_multipart_uploads_are_aborted(tmp_path: Path, s3_bucket: tuple[SeaweedS3, str]) -> None:
    """A crash right after CreateMultipartUpload leaves an upload no sidecar names (orphan); a sidecar can
    name parts the server does not have any more (unusable). Recovery aborts both and delivers."""
    import json

    from gatewayd.store.sidecar import Sidecar
    from tests.storehelp import crashed_recording

    server, bucket = s3_bucket
    c = server.client()
    spool = tmp_path / "spool"
    x1, x2 = signal(MIN * 12, seed=21), signal(MIN * 12, seed=22)
    crashed_recording(spool, "orphan", bucket, "mp/orphan.wav", x1)
    orphan_id = c.create_multipart_upload(Bucket=bucket, Key="mp/orphan.wav")["UploadId"]
    crashed_recording(spool, "unusable", bucket, "mp/unusable.wav", x2)
    bad_id = c.create_multipart_upload(Bucket=bucket, Key="mp/unusable.wav")["UploadId"]
    P = 5 * 1024 * 1024
    c.upload_part(Bucket=bucket, Key="mp/unusable.wav", UploadId=bad_id, PartNumber=2, Body=b"\0" * P)
    sc = json.loads((spool / "unusable.json").read_text())
    sc.update(upload_id=bad_id, parts=[{"number": 2, "offset": P, "size": P, "etag": '"0123456789abcdef"'}])
    Sidecar.from_dict(sc).save(spool)

    store = make_store(tmp_path, server, bucket)
    try:
        assert sorted(store.start()) == ["orphan", "unusable"]
        assert store.wait_idle(WAIT)
    finally:
        store.stop()
    check_object(server, bucket, "mp/orphan.wav", x1, "tx", "cid")
    check_object(server, bucket, "mp/unusable.wav", x2, "tx", "cid")
    uploads = c.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert not uploads, [(u["Key"], u["UploadId"]) for u in uploads]
    for key, upload_id in (("mp/orphan.wav", orphan_id), ("mp/unusable.wav", bad_id)):
        with pytest.raises(Exception, match="NoSuchUpload"):
            c.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
