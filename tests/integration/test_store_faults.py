"""Fault tests of the recording store against a real S3-compatible server: a recording is never lost.

* the recorder process is SIGKILLed mid-upload and mid-recording (twice: also during recovery);
* the S3 server is down for a while during several recordings;
* the spool is full or unwritable (ENOSPC through /dev/full, EFBIG through RLIMIT_FSIZE mid-recording,
  ENOTDIR through a regular file).
"""

from __future__ import annotations

import errno
import json
import os
import queue
import signal as signals
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gatewayd.store import RecordingStore, SpoolError, StoreConfig
from gatewayd.store.recording import RecordingOutcome
from gatewayd.testing.seaweedfs import SeaweedS3
from tests.integration.test_store_s3 import Events, check_object, no_multipart_uploads_left
from tests.s3_fixtures import s3_store_backend
from tests.storehelp import feed, parse_wav, signal, stereo_signal

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT = 120.0
MIN = 8000 * 60
ROOT = Path(__file__).resolve().parents[2]


class Child:
    """``tests.integration.store_child`` in a subprocess, its JSON lines collected by a thread."""

    def __init__(self, plan: dict[str, Any], server: SeaweedS3) -> None:
        env = {**os.environ, **server.env(), "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.integration.store_child", json.dumps(plan)],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(json.loads(line))
        self._q.put(None)

    def wait_for(self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.lines):
            try:
                item = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = None
            if item is None:
                self.kill()
                raise AssertionError(f"child ended or timed out before the condition; stderr:\n{self.stderr()}")
            self.lines.append(item)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signals.SIGKILL)
        self.proc.wait(30)
        self._reader.join(10)
        while (item := self._q.get_nowait() if not self._q.empty() else None) is not None:
            self.lines.append(item)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()[-4000:]

    def run_to_end(self, timeout: float = WAIT) -> int:
        self.wait_for(lambda lines: any(x.get("step") == "idle" for x in lines), timeout)
        return self.proc.wait(timeout)

    def ids(self) -> dict[str, str]:
        return {x["name"]: x["rid"] for x in self.lines if x.get("step") == "opened"}

    def flushed(self, rid: str) -> int:
        return max((x["samples"] for x in self.lines if x.get("event") == "flushed" and x["rid"] == rid), default=0)

    def has(self, **want: Any) -> bool:
        return any(all(x.get(k) == v for k, v in want.items()) for x in self.lines)


def test_sigkill_mid_upload_and_mid_recording_then_restart(tmp_path: Path, s3_bucket: tuple[SeaweedS3, str]) -> None:
    server, bucket = s3_bucket
    spool = tmp_path / "spool"
    plan = {"mode": "kill", "spool": str(spool), "endpoint": server.endpoint_url, "bucket": bucket}
    child = Child(plan, server)

    def ready(lines: list[dict[str, Any]]) -> bool:
        ids = {x["name"]: x["rid"] for x in lines if x.get("step") == "opened"}
        return (len(ids) == 4
                and any(x.get("step") == "outcome" and x["name"] == "R1" and x["ok"] for x in lines)
                and any(x.get("step") == "stalled" for x in lines)  # R2: stopped, part 1 in flight
                and any(x.get("event") == "part_uploaded" and x["rid"] == ids["R3"] for x in lines)
                and any(x.get("event") == "flushed" and x["rid"] == ids["R4"] for x in lines))

    child.wait_for(ready)
    child.kill()  # SIGKILL: no clean-up of any kind
    ids = child.ids()
    flushed = {name: child.flushed(rid) for name, rid in ids.items()}
    assert child.has(event="part_uploaded", rid=ids["R2"], part=2)
    assert child.has(event="closed", rid=ids["R2"])
    assert not child.has(event="closed", rid=ids["R3"]) and not child.has(event="closed", rid=ids["R4"])
    left = sorted(p.name for p in spool.iterdir())
    assert left == sorted(f"{ids[n]}{s}" for n in ("R2", "R3", "R4") for s in (".json", ".wav"))
    sidecars = {n: json.loads((spool / f"{ids[n]}.json").read_text()) for n in ("R2", "R3")}
    assert sidecars["R2"]["state"] == "closed" and sidecars["R2"]["upload_id"]
    assert sidecars["R3"]["state"] == "recording" and sidecars["R3"]["upload_id"]
    # nothing of R2..R4 is in the bucket yet
    listed = {o["Key"] for o in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert listed == {"kill/R1.wav"}

    # second crash: killed again during start-up recovery, while R3's part 1 is being sent
    child2 = Child({**plan, "mode": "recover", "stall_part1_of": ["kill/R3.wav"]}, server)
    child2.wait_for(lambda lines: any(x.get("step") == "stalled" for x in lines))
    child2.kill()
    assert child2.has(event="recovered", rid=ids["R3"])

    # third start, in this process: everything arrives
    events = Events()
    store = RecordingStore(StoreConfig(spool_dir=spool, buckets={bucket: s3_store_backend(server)},
                                       retry_initial=0.1, retry_max=0.5, spool_min_free_bytes=0), listener=events)
    try:
        recovered = store.start()
        # whatever the second run did not deliver before its kill; R3 was held there, so it is here
        assert ids["R3"] in recovered and set(recovered) <= {ids[n] for n in ("R2", "R3", "R4")}
        assert store.wait_idle(WAIT)
    finally:
        store.stop()
    c = server.client()
    check_object(server, bucket, "kill/R1.wav", signal(8000 * 3, 1), "tx-R1", "call-R1")
    check_object(server, bucket, "kill/R2.wav", signal(MIN * 12, 2), "tx-R2", "call-R2")
    for name, stereo, seed in (("R3", True, 3), ("R4", False, 4)):
        _, _, got = parse_wav(c.get_object(Bucket=bucket, Key=f"kill/{name}.wav")["Body"].read())
        n = got.shape[0]
        # intact up to (at least) the last frame the killed process had flushed to the file
        assert n >= flushed[name] > 0, (name, n, flushed[name])
        check_object(server, bucket, f"kill/{name}.wav", stereo_signal(n, seed) if stereo else signal(n, seed),
                     f"tx-{name}", f"call-{name}")
    assert no_multipart_uploads_left(server, bucket)  # abandoned uploads were completed or aborted
    assert list(spool.iterdir()) == []


def test_s3_outage_during_several_recordings(tmp_path: Path, private_s3: Callable[[], SeaweedS3]) -> None:
    server = private_s3()
    bucket = "outage"
    server.create_bucket(bucket)
    wait = 2.0
    events = Events()
    store = RecordingStore(StoreConfig(
        spool_dir=tmp_path / "spool", buckets={bucket: s3_store_backend(server, connect_timeout=0.5, read_timeout=5)},
        upload_wait=wait, retry_initial=0.1, retry_max=0.5, spool_min_free_bytes=0), listener=events)
    store.start()
    try:
        long_x = signal(MIN * 16, seed=11)
        long_rec = store.open_recording(bucket, "o/long.wav", transaction_id="t-long", call_id="c-long")
        feed(long_rec, long_x[:MIN * 12])  # part 2 streams before the outage
        deadline = time.monotonic() + WAIT
        while not events.named("part_uploaded", long_rec.recording_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events.named("part_uploaded", long_rec.recording_id)

        server.stop()  # ---- outage
        feed(long_rec, long_x, start=MIN * 12)  # part 3 cannot be streamed now
        short_x, mid_x = signal(8000 * 4, seed=12), signal(MIN * 7, seed=13)
        short = store.open_recording(bucket, "o/short.wav", transaction_id="t-short", call_id="c-short")
        feed(short, short_x)
        mid = store.open_recording(bucket, "o/mid.wav", transaction_id="t-mid", call_id="c-mid")
        feed(mid, mid_x)
        futures = {}
        for name, rec in (("short", short), ("mid", mid), ("long", long_rec)):
            futures[name] = (time.monotonic(), rec.finish())
        time.sleep(wait * 0.75)
        assert not any(f.done() for _, f in futures.values())  # no failure before the configured wait
        for name, (t0, fut) in futures.items():
            out: RecordingOutcome = fut.result(WAIT)
            assert time.monotonic() - t0 >= wait, name
            assert not out.ok and out.error_type == "InvalidActionParameter"
            assert out.error_message == "Error occurred while uploading recording to S3 bucket."
        assert len(list((tmp_path / "spool").glob("*.wav"))) == 3  # all kept
        assert store.metrics.snapshot()["spool_backlog_count"] == 3

        server.start()  # ---- back, same ports and data
        assert store.wait_idle(WAIT)
        check_object(server, bucket, "o/long.wav", long_x, "t-long", "c-long")
        check_object(server, bucket, "o/short.wav", short_x, "t-short", "c-short")
        check_object(server, bucket, "o/mid.wav", mid_x, "t-mid", "c-mid")
        assert no_multipart_uploads_left(server, bucket)
        assert list((tmp_path / "spool").iterdir()) == []
        snap = store.metrics.snapshot()
        assert snap["outcomes_failed"] == 3 and snap["upload_attempts_failed"] > 0 and snap["uploads_confirmed"] == 3
        # and business as usual afterwards
        after = store.open_recording(bucket, "o/after.wav", transaction_id="t", call_id="c")
        feed(after, short_x)
        assert after.finish().result(WAIT).ok
    finally:
        store.stop()


def test_spool_file_too_large_mid_recording(tmp_path: Path, s3_bucket: tuple[SeaweedS3, str]) -> None:
    """RLIMIT_FSIZE in the recorder process: EFBIG after 40000 samples (+ a torn one)."""
    server, bucket = s3_bucket
    limit = 44 + 2 * 40000 + 1
    plan = {"mode": "fsize", "spool": str(tmp_path / "spool"), "endpoint": server.endpoint_url, "bucket": bucket,
            "fsize_limit": limit}
    child = Child(plan, server)
    assert child.run_to_end() == 0, child.stderr()
    big = next(x for x in child.lines if x.get("step") == "outcome" and x["name"] == "big")
    assert big["ok"] is False and big["errno"] == errno.EFBIG
    assert big["error_type"] == "SystemException"
    assert big["error_message"] == "Recording could not be written to the local spool: File too large."
    assert next(x for x in child.lines if x.get("step") == "put_after_error")["results"] == [False] * 10
    assert child.has(step="outcome", name="small", ok=True, samples=1000)
    assert child.has(step="idle", ok=True)
    # the audio written before the error is kept and delivered
    check_object(server, bucket, "fsize/big.wav", signal(40000, 7), "tx", "call")
    check_object(server, bucket, "fsize/small.wav", signal(1000, 8), "tx", "call")
    assert list((tmp_path / "spool").iterdir()) == []


def test_spool_full_or_unwritable_at_open(tmp_path: Path, s3_bucket: tuple[SeaweedS3, str]) -> None:
    server, bucket = s3_bucket
    backend = {bucket: s3_store_backend(server)}
    (tmp_path / "plain-file").write_text("x")
    broken = RecordingStore(StoreConfig(spool_dir=tmp_path / "plain-file" / "spool", buckets=backend))
    broken.start()
    try:
        with pytest.raises(SpoolError) as e:
            broken.open_recording(bucket, "x.wav", transaction_id="t", call_id="c")
        assert e.value.errno == errno.ENOTDIR
        assert e.value.message == "Recording could not be written to the local spool: Not a directory."
    finally:
        broken.stop()

    store = RecordingStore(StoreConfig(spool_dir=tmp_path / "spool", buckets=backend, spool_min_free_bytes=0))
    store.start()
    try:
        (tmp_path / "spool" / "full.wav").symlink_to("/dev/full")
        with pytest.raises(SpoolError) as e:
            store.open_recording(bucket, "full.wav", transaction_id="t", call_id="c", recording_id="full")
        assert e.value.errno == errno.ENOSPC
        assert e.value.message == "Recording could not be written to the local spool: No space left on device."
        # the call goes on: the next recording works
        rec = store.open_recording(bucket, "fine.wav", transaction_id="t", call_id="c")
        x = signal(5000)
        feed(rec, x)
        assert rec.finish().result(WAIT).ok
        check_object(server, bucket, "fine.wav", x, "t", "c")
        with pytest.raises(Exception, match=r"404|Not Found"):
            server.client().head_object(Bucket=bucket, Key="full.wav")
    finally:
        store.stop()
