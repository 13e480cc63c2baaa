"""The recording store with local-directory buckets (the embedded default), and its spool."""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gatewayd.store import (
    LocalDirectoryConfig,
    RecordingStore,
    SpoolError,
    SpoolFull,
    StoreConfig,
    StoreEvent,
    UnknownBucket,
    recording_key,
)
from gatewayd.store.buckets import FileSlice, LocalDirectoryBucket
from gatewayd.store.errors import InvalidKey, PermanentBucketError
from gatewayd.store.sidecar import Sidecar, State
from tests.storehelp import crashed_recording, feed, parse_wav, signal, stereo_signal

WAIT = 30.0


def make_store(tmp_path: Path, **kw: object) -> RecordingStore:
    args: dict[str, object] = {"default_backend": LocalDirectoryConfig(tmp_path / "buckets"), "retry_initial": 0.05,
                               "retry_max": 0.2, "spool_min_free_bytes": 0}
    args.update(kw)
    cfg = StoreConfig(spool_dir=tmp_path / "spool", **args)  # type: ignore[arg-type]
    return RecordingStore(cfg)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordingStore]:
    s = make_store(tmp_path)
    s.start()
    yield s
    s.stop()


def spool_files(store: RecordingStore) -> list[str]:
    return sorted(p.name for p in store.spool_dir.iterdir())


# ----------------------------------------------------------------------------- local bucket backend
def test_local_bucket_put_head_get_acl(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"0123456789")
    b = LocalDirectoryBucket(LocalDirectoryConfig(tmp_path / "root"))
    with FileSlice(src, 2, 5) as body:
        b.put_object("rec", "a/b/c.wav", body, "audio/wav", {"call-id": "c1"})
    assert (tmp_path / "root" / "rec" / "a" / "b" / "c.wav").read_bytes() == b"23456"
    info = b.head_object("rec", "a/b/c.wav")
    assert info is not None
    assert (info.size, info.content_type, dict(info.metadata)) == (5, "audio/wav", {"call-id": "c1"})
    assert b.get_object("rec", "a/b/c.wav") == b"23456"
    assert b.get_acl("rec", "a/b/c.wav") is None
    b.put_object_acl("rec", "a/b/c.wav", "bucket-owner-full-control")
    assert b.get_acl("rec", "a/b/c.wav") == "bucket-owner-full-control"
    assert b.head_object("rec", "a/b/missing.wav") is None
    # written atomically: no temporary files left anywhere
    assert not [p for p in (tmp_path / "root").rglob("*") if p.name.endswith(".tmp")]


def test_local_bucket_missing_bucket_and_bad_keys(tmp_path: Path) -> None:
    b = LocalDirectoryBucket(LocalDirectoryConfig(tmp_path / "root", create_buckets=False))
    src = tmp_path / "s"
    src.write_bytes(b"x")
    with pytest.raises(PermanentBucketError) as e, FileSlice(src, 0, 1) as body:
        b.put_object("nope", "k.wav", body, "audio/wav", {})
    assert e.value.code == "NoSuchBucket"
    for key in ("../x.wav", "a//b.wav", "a/./b.wav", "/abs.wav", "", "a/"):
        with pytest.raises(InvalidKey):
            b.check_key(key)
    with pytest.raises(InvalidKey):
        b.check_key("k" * 1025)
    b.check_key("voicemail/x.wav")


def test_file_slice_is_a_seekable_window(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(bytes(range(100)))
    with FileSlice(p, 10, 20) as s:
        assert len(s) == 20 and s.read(5) == bytes(range(10, 15)) and s.tell() == 5
        assert s.read() == bytes(range(15, 30)) and s.read() == b""
        s.seek(-3, os.SEEK_END)
        assert s.read(10) == bytes(range(27, 30))
    with pytest.raises(ValueError):
        FileSlice(p, 90, 20)


# ----------------------------------------------------------------------------- recordings
def test_mono_recording_lands_with_metadata_and_acl(store: RecordingStore, tmp_path: Path) -> None:
    key = recording_key("voicemail/")
    seen: list[object] = []
    rec = store.open_recording("rec", key, transaction_id="tx-1", call_id="call-1", on_outcome=seen.append)
    x = signal(8000 * 3 + 77)
    feed(rec, x)
    out = rec.finish().result(WAIT)
    assert out.ok and (out.bucket, out.key, out.samples) == ("rec", key, len(x))
    assert out.duration == pytest.approx(len(x) / 8000)
    assert seen == [out]
    data = (tmp_path / "buckets" / "rec" / key).read_bytes()
    channels, rate, got = parse_wav(data)
    assert (channels, rate) == (1, 8000)
    np.testing.assert_array_equal(got, x)
    backend = store.backend_for("rec")
    info = backend.head_object("rec", key)
    assert info is not None and info.content_type == "audio/wav"
    assert dict(info.metadata) == {"transaction-id": "tx-1", "call-id": "call-1", "recording-duration": "3.010"}
    assert isinstance(backend, LocalDirectoryBucket)
    assert backend.get_acl("rec", key) == "bucket-owner-full-control"
    assert store.wait_idle(WAIT)
    assert spool_files(store) == []  # removed once confirmed
    snap = store.metrics.snapshot()
    assert snap["uploads_confirmed"] == 1 and snap["spool_backlog_count"] == 0
    assert snap["upload_complete_p50_s"] is not None


def test_trim_and_cut(store: RecordingStore, tmp_path: Path) -> None:
    x = signal(16000)
    r1 = store.open_recording("rec", "t/trim.wav", transaction_id="t", call_id="c")
    feed(r1, x)
    r2 = store.open_recording("rec", "t/cut.wav", transaction_id="t", call_id="c")
    feed(r2, x)
    r3 = store.open_recording("rec", "t/both.wav", transaction_id="t", call_id="c")
    feed(r3, x)
    assert r1.finish(trim_samples=2000).result(WAIT).samples == 14000
    assert r2.finish(cut_at=5000).result(WAIT).samples == 5000
    assert r3.finish(cut_at=5000, trim_samples=6000).result(WAIT).samples == 0
    for name, n in (("trim", 14000), ("cut", 5000), ("both", 0)):
        _, _, got = parse_wav((tmp_path / "buckets" / "rec" / "t" / f"{name}.wav").read_bytes())
        np.testing.assert_array_equal(got, x[:n])


def test_stereo_left_incoming_right_outgoing(store: RecordingStore, tmp_path: Path) -> None:
    incoming, outgoing = signal(4000, seed=1), signal(4000, seed=2)
    rec = store.open_recording("rec", "call/x.wav", transaction_id="t", call_id="c", channels=2,
                               extra_metadata={"recording-audio-file-format": "wav"})
    for i in range(0, 4000, 160):
        assert rec.put_stereo(incoming[i:i + 160], outgoing[i:i + 160])
    assert rec.finish().result(WAIT).ok
    channels, _, got = parse_wav((tmp_path / "buckets" / "rec" / "call" / "x.wav").read_bytes())
    assert channels == 2
    np.testing.assert_array_equal(got[:, 0], incoming)
    np.testing.assert_array_equal(got[:, 1], outgoing)
    info = store.backend_for("rec").head_object("rec", "call/x.wav")
    assert info is not None and info.metadata["recording-audio-file-format"] == "wav"


def test_put_checks_the_shape_and_stops_after_finish(store: RecordingStore) -> None:
    rec = store.open_recording("rec", "x.wav", transaction_id="t", call_id="c")
    with pytest.raises(ValueError):
        rec.put(np.zeros((160, 2), dtype=np.int16))
    with pytest.raises(ValueError):
        rec.put(np.zeros(160, dtype=np.float32))  # type: ignore[arg-type]
    assert rec.put(np.zeros(160, dtype=np.int16))
    fut = rec.finish()
    assert rec.finish() is fut  # idempotent
    assert rec.put(np.zeros(160, dtype=np.int16)) is False
    assert fut.result(WAIT).samples == 160


def test_ring_overflow_drops_oldest_and_keeps_timing_with_silence(tmp_path: Path) -> None:
    # the writer sleeps 60 s unless woken, so nothing is drained until finish(): deterministic overflow
    store = make_store(tmp_path, ring_frames=4, writer_interval=60.0)
    store.start()
    try:
        x = signal(160 * 10)
        rec = store.open_recording("rec", "o.wav", transaction_id="t", call_id="c")
        results = [rec.put(x[i:i + 160]) for i in range(0, len(x), 160)]
        assert results == [True] * 4 + [False] * 6
        assert rec.dropped_blocks == 6
        out = rec.finish().result(WAIT)
        assert out.samples == len(x)  # the leg's timing is kept
        _, _, got = parse_wav((tmp_path / "buckets" / "rec" / "o.wav").read_bytes())
        assert not got[:960].any()  # the 6 oldest blocks became silence
        np.testing.assert_array_equal(got[960:], x[960:])
        assert store.metrics.snapshot()["frames_dropped"] == 6
    finally:
        store.stop()


def test_unknown_bucket_without_default_backend(tmp_path: Path) -> None:
    store = RecordingStore(StoreConfig(spool_dir=tmp_path / "spool",
                                       buckets={"known": LocalDirectoryConfig(tmp_path / "b")}))
    store.start()
    try:
        with pytest.raises(UnknownBucket) as e:
            store.open_recording("other", "x.wav", transaction_id="t", call_id="c")
        assert e.value.message == "Error occurred while uploading recording to S3 bucket."
        assert store.open_recording("known", "x.wav", transaction_id="t", call_id="c").finish().result(WAIT).ok
    finally:
        store.stop()


def test_failure_is_reported_fast_then_delivered_when_the_bucket_appears(tmp_path: Path) -> None:
    events: list[StoreEvent] = []
    cfg = StoreConfig(spool_dir=tmp_path / "spool",
                      default_backend=LocalDirectoryConfig(tmp_path / "buckets", create_buckets=False),
                      retry_initial=0.05, retry_max=0.2, spool_min_free_bytes=0, upload_wait=30.0)
    store = RecordingStore(cfg, listener=events.append)
    store.start()
    try:
        rec = store.open_recording("late", "v/x.wav", transaction_id="t", call_id="c")
        x = signal(800)
        feed(rec, x)
        t0 = time.monotonic()
        out = rec.finish().result(WAIT)
        assert not out.ok and time.monotonic() - t0 < 30.0  # NoSuchBucket: no point waiting 30 s
        assert out.error_type == "InvalidActionParameter"
        assert out.error_message == "Error occurred while uploading recording to S3 bucket."
        assert "NoSuchBucket" in (out.detail or "")
        assert len(list(store.spool_dir.glob("*.wav"))) == 1  # still spooled
        (tmp_path / "buckets" / "late").mkdir(parents=True)  # the operator fixes it
        assert store.wait_idle(WAIT)
        _, _, got = parse_wav((tmp_path / "buckets" / "late" / "v" / "x.wav").read_bytes())
        np.testing.assert_array_equal(got, x)
        assert spool_files(store) == []
        assert any(e.name == "attempt_failed" for e in events)
        assert store.metrics.snapshot()["outcomes_failed"] == 1
    finally:
        store.stop()


# ----------------------------------------------------------------------------- spool problems
def test_spool_dir_through_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = RecordingStore(StoreConfig(spool_dir=tmp_path / "file" / "spool",
                                       default_backend=LocalDirectoryConfig(tmp_path / "b")))
    store.start()  # the daemon still starts; every recording fails clearly
    try:
        with pytest.raises(SpoolError) as e:
            store.open_recording("rec", "x.wav", transaction_id="t", call_id="c")
        assert e.value.errno == errno.ENOTDIR
        assert e.value.message == "Recording could not be written to the local spool: Not a directory."
    finally:
        store.stop()


def test_spool_file_on_a_full_device(store: RecordingStore) -> None:
    rid = "0e6f5c3a-full-device"
    (store.spool_dir / f"{rid}.wav").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(SpoolError) as e:
        store.open_recording("rec", "x.wav", transaction_id="t", call_id="c", recording_id=rid)
    assert e.value.errno == errno.ENOSPC
    assert e.value.message == "Recording could not be written to the local spool: No space left on device."
    assert spool_files(store) == []  # no sidecar left behind
    # the store goes on
    assert store.open_recording("rec", "y.wav", transaction_id="t", call_id="c").finish().result(WAIT).ok


def test_spool_quota_and_free_space(tmp_path: Path) -> None:
    store = make_store(tmp_path, spool_max_bytes=1000)
    store.start()
    try:
        rec = store.open_recording("rec", "a.wav", transaction_id="t", call_id="c")
        feed(rec, signal(1000))
        deadline = time.monotonic() + WAIT
        while store.backlog()[1] < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(SpoolFull) as e:
            store.open_recording("rec", "b.wav", transaction_id="t", call_id="c")
        assert e.value.errno == errno.ENOSPC and "limit 1000" in str(e.value)
        assert rec.finish().result(WAIT).ok  # the open one is not affected
        assert store.wait_idle(WAIT)
        assert store.open_recording("rec", "c.wav", transaction_id="t", call_id="c").finish().result(WAIT).ok
    finally:
        store.stop()
    store = make_store(tmp_path / "2", spool_min_free_bytes=1 << 62)
    store.start()
    try:
        with pytest.raises(SpoolFull, match="bytes free"):
            store.open_recording("rec", "a.wav", transaction_id="t", call_id="c")
    finally:
        store.stop()


# ----------------------------------------------------------------------------- start-up recovery
def test_recovery_repairs_and_uploads(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    x = signal(12345, seed=3)
    crashed_recording(spool, "r1", "rec", "crash/one.wav", x, extra=b"\x01")  # torn trailing sample
    st = stereo_signal(999, seed=4)
    crashed_recording(spool, "r2", "rec", "crash/two.wav", st, channels=2, extra=b"\x01\x02\x03")
    (spool / "r3.wav").write_bytes(b"RIFF\x00")  # crashed while writing the header
    Sidecar(recording_id="r3", bucket="rec", key="crash/three.wav", channels=1, sample_rate=8000,
            metadata={}).save(spool)
    Sidecar(recording_id="r4", bucket="rec", key="crash/four.wav", channels=1, sample_rate=8000,
            metadata={}).save(spool)  # crashed before its WAV was created: nothing to deliver
    done = Sidecar(recording_id="r5", bucket="rec", key="crash/five.wav", channels=1, sample_rate=8000,
                   metadata={}, state=State.UPLOADED)
    done.save(spool)
    lost = Sidecar(recording_id="r6", bucket="rec", key="crash/six.wav", channels=1, sample_rate=8000,
                   metadata={}, state=State.CLOSED, size=44, samples=0)
    lost.save(spool)  # closed, but its WAV was deleted by someone: set aside, not silently dropped
    (spool / "r7.json").write_text("{not json")
    store = make_store(tmp_path)
    recovered = store.start()
    try:
        assert sorted(recovered) == ["r1", "r2", "r3"]
        assert store.wait_idle(WAIT)
        root = tmp_path / "buckets" / "rec" / "crash"
        _, _, got = parse_wav((root / "one.wav").read_bytes())
        np.testing.assert_array_equal(got, x)
        channels, _, got2 = parse_wav((root / "two.wav").read_bytes())
        assert channels == 2
        np.testing.assert_array_equal(got2, st)
        _, _, got3 = parse_wav((root / "three.wav").read_bytes())
        assert len(got3) == 0
        assert not (root / "four.wav").exists()
        info = store.backend_for("rec").head_object("rec", "crash/one.wav")
        assert info is not None
        assert dict(info.metadata) == {"transaction-id": "tx", "call-id": "cid", "recording-duration": "1.543"}
        assert spool_files(store) == ["r6.json.orphan", "r7.json"]
        assert store.metrics.snapshot()["recovered"] == 3
    finally:
        store.stop()


def test_stop_leaves_unfinished_uploads_for_the_next_start(tmp_path: Path) -> None:
    cfg_kw = {"default_backend": LocalDirectoryConfig(tmp_path / "buckets", create_buckets=False)}
    store = make_store(tmp_path, **cfg_kw)
    store.start()
    rec = store.open_recording("later", "k.wav", transaction_id="t", call_id="c")
    x = signal(3000)
    feed(rec, x)
    fut = rec.finish()
    store.stop()  # bucket missing: cannot be delivered now
    out = fut.result(WAIT)
    assert not out.ok
    sc = json.loads((tmp_path / "spool" / f"{rec.recording_id}.json").read_text())
    assert sc["state"] == "closed" and sc["samples"] == 3000
    (tmp_path / "buckets" / "later").mkdir(parents=True)
    store2 = make_store(tmp_path, **cfg_kw)
    assert store2.start() == [rec.recording_id]
    try:
        assert store2.wait_idle(WAIT)
        _, _, got = parse_wav((tmp_path / "buckets" / "later" / "k.wav").read_bytes())
        np.testing.assert_array_equal(got, x)
    finally:
        store2.stop()


def test_stop_closes_open_recordings_and_recovery_delivers_them(tmp_path: Path) -> None:
    store = make_store(tmp_path, default_backend=LocalDirectoryConfig(tmp_path / "buckets", create_buckets=False))
    store.start()
    rec = store.open_recording("later", "open.wav", transaction_id="t", call_id="c")
    x = signal(4321)
    feed(rec, x)
    deadline = time.monotonic() + WAIT
    while rec.written_bytes < 44 + 2 * len(x) and time.monotonic() < deadline:
        time.sleep(0.01)
    store.stop()  # never finished by the runtime
    (tmp_path / "buckets" / "later").mkdir(parents=True)
    store2 = make_store(tmp_path)
    store2.start()
    try:
        assert store2.wait_idle(WAIT)
        _, _, got = parse_wav((tmp_path / "buckets" / "later" / "open.wav").read_bytes())
        np.testing.assert_array_equal(got, x)
    finally:
        store2.stop()


# ----------------------------------------------------------------------------- configuration
def test_config_from_mapping_and_embedded(tmp_path: Path) -> None:
    from gatewayd.store import S3EndpointConfig, store_config_from_dict

    cfg = store_config_from_dict({
        "spool_dir": str(tmp_path / "spool"), "upload_wait": 4,
        "buckets": {"cloud": {"type": "s3", "region_name": "eu-west-1"},
                    "nas": {"type": "s3", "endpoint_url": "http://nas:8333", "access_key_id": "k",
                            "secret_access_key": "s"}},
        "default": {"type": "local", "root": str(tmp_path / "b"), "create_buckets": False}})
    assert cfg.upload_wait == 4 and cfg.spool_dir == tmp_path / "spool"
    assert cfg.backend_for("cloud") == S3EndpointConfig(region_name="eu-west-1")
    nas = cfg.backend_for("nas")
    assert isinstance(nas, S3EndpointConfig) and nas.endpoint_url == "http://nas:8333"
    assert cfg.backend_for("other") == LocalDirectoryConfig(tmp_path / "b", create_buckets=False)
    for bad, msg in (({}, "spool_dir"), ({"spool_dir": "x", "bogus": 1}, "bogus"),
                     ({"spool_dir": "x", "buckets": {"a": {"type": "ftp"}}}, "type must be"),
                     ({"spool_dir": "x", "default": {"type": "local"}}, "root"),
                     ({"spool_dir": "x", "buckets": {"a": {"type": "s3", "endpoint": "y"}}}, "endpoint"),
                     ({"spool_dir": "x", "part_size": 1024}, "part_size")):
        with pytest.raises(ValueError, match=msg):
            store_config_from_dict(bad)
    emb = StoreConfig.embedded(tmp_path)
    assert emb.spool_dir == tmp_path / "spool"
    assert emb.backend_for("anything") == LocalDirectoryConfig(tmp_path / "buckets")
