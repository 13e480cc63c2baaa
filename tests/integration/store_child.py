"""A recorder process for the store's fault tests: ``python -m tests.integration.store_child PLAN_JSON``.

It runs a real :class:`RecordingStore` against the S3 endpoint in the plan (credentials from the
environment: boto3's standard chain) and prints one JSON object per line on stdout for every store event
and every step, so that the parent can kill it (SIGKILL) at a chosen moment and then check what a
restart delivers. Plan keys:

* ``mode``: ``kill`` (record R1..R4 and wait to be killed), ``recover`` (start-up recovery, wait to be
  killed), ``fsize`` (record into a spool limited by RLIMIT_FSIZE);
* ``spool``, ``endpoint``, ``bucket``; ``stall_part1_of``: keys whose part 1 (the header part) upload
  is held forever in botocore's ``before-send`` (the request is never sent), so the kill lands mid-upload;
* ``fsize_limit``: bytes (``fsize`` mode).
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gatewayd.store import RecordingStore, S3EndpointConfig, StoreConfig, StoreEvent
from gatewayd.store.recording import Recording
from gatewayd.store.s3 import S3Bucket
from tests.storehelp import signal, stereo_signal

_out_lock = threading.Lock()
_parts_seen: dict[str, set[int]] = {}


def say(**fields: Any) -> None:
    with _out_lock:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def on_event(e: StoreEvent) -> None:
    if e.name == "part_uploaded":
        _parts_seen.setdefault(e.recording_id, set()).add(int(str(e.fields["part"])))
    say(event=e.name, rid=e.recording_id, **{k: v for k, v in e.fields.items() if k != "error"},
        **({"error": str(e.fields["error"])} if "error" in e.fields else {}))


def make_store(plan: dict[str, Any]) -> RecordingStore:
    backend = S3EndpointConfig(endpoint_url=plan["endpoint"], addressing_style="path", connect_timeout=1.0,
                               read_timeout=10.0)
    cfg = StoreConfig(spool_dir=Path(plan["spool"]), buckets={plan["bucket"]: backend}, upload_wait=60.0,
                      retry_initial=0.1, retry_max=0.5, fsync_interval=0.05, spool_min_free_bytes=0)
    return RecordingStore(cfg, listener=on_event)


def install_stall(store: RecordingStore, bucket: str, keys: list[str]) -> None:
    backend = store.backend_for(bucket)
    assert isinstance(backend, S3Bucket)

    def hold(request: Any, **_: Any) -> None:
        url = str(request.url)
        if "partNumber=1&" in url + "&" and any(f"/{bucket}/{k}?" in url for k in keys):
            say(step="stalled", url=url.split("?", maxsplit=1)[0])
            while True:
                time.sleep(3600)

    backend.client.meta.events.register("before-send.s3.UploadPart", hold)


def feed(rec: Recording, name: str, total: int, stereo: bool, seed: int, pace: float = 0.0) -> None:
    block = 160 * 50  # 1 s blocks: fewer puts, same data
    pos = 0
    while pos < total:
        n = min(block, total - pos)
        x = stereo_signal(n, seed, pos) if stereo else signal(n, seed, pos)
        while len(rec.ring) > rec.ring.capacity // 2 and rec.accepting:
            time.sleep(0.001)
        rec.put(x)
        pos += n
        if pace:
            time.sleep(pace)
    say(step="fed", name=name, rid=rec.recording_id, samples=pos)


def mode_kill(plan: dict[str, Any], store: RecordingStore) -> None:
    bucket = plan["bucket"]
    recs = {}
    for name, channels in (("R1", 1), ("R2", 1), ("R3", 2), ("R4", 1)):
        rec = store.open_recording(bucket, f"kill/{name}.wav", transaction_id=f"tx-{name}", call_id=f"call-{name}",
                                   channels=channels)
        recs[name] = rec
        say(step="opened", name=name, rid=rec.recording_id, key=rec.key)
    install_stall(store, bucket, [recs["R2"].key])
    # R3 (stereo) and R4 keep recording until the kill; R3 streams parts meanwhile
    threads = [threading.Thread(target=feed, args=(recs["R3"], "R3", 8000 * 1200, True, 3, 0.01), daemon=True),
               threading.Thread(target=feed, args=(recs["R4"], "R4", 8000 * 1200, False, 4, 0.02), daemon=True)]
    for t in threads:
        t.start()
    feed(recs["R1"], "R1", 8000 * 3, False, 1)
    out = recs["R1"].finish().result(60)
    say(step="outcome", name="R1", ok=out.ok, samples=out.samples)
    feed(recs["R2"], "R2", 8000 * 60 * 12, False, 2)  # 11.5 MB: part 2 streams, then the stop
    deadline = time.monotonic() + 60
    while 2 not in _parts_seen.get(recs["R2"].recording_id, set()) and time.monotonic() < deadline:
        time.sleep(0.01)
    recs["R2"].finish()
    say(step="finished", name="R2")
    while True:
        time.sleep(3600)


def mode_recover(plan: dict[str, Any], store: RecordingStore) -> None:
    say(step="recovering", ids=store.recover())
    while True:
        time.sleep(3600)


def mode_fsize(plan: dict[str, Any], store: RecordingStore) -> None:
    bucket = plan["bucket"]
    rec = store.open_recording(bucket, "fsize/big.wav", transaction_id="tx", call_id="call")
    say(step="opened", name="big", rid=rec.recording_id, key=rec.key)
    total = 8000 * 60
    x = signal(total, 7)
    for i in range(0, total, 160):
        while len(rec.ring) > rec.ring.capacity // 2 and rec.accepting:
            time.sleep(0.001)
        rec.put(x[i:i + 160])
        if rec.error is not None:
            break
    out = rec.outcome.result(60)
    say(step="outcome", name="big", ok=out.ok, error_type=out.error_type, error_message=out.error_message,
        detail=out.detail, errno=rec.error.errno if rec.error else None)
    # the call goes on: more audio is refused without an exception, other recordings still work
    more = [rec.put(x[:160]) for _ in range(10)]
    say(step="put_after_error", results=more)
    small = store.open_recording(bucket, "fsize/small.wav", transaction_id="tx", call_id="call")
    small.put(signal(1000, 8))
    out2 = small.finish().result(60)
    say(step="outcome", name="small", ok=out2.ok, samples=out2.samples)
    say(step="idle", ok=store.wait_idle(60))


def main() -> int:
    plan = json.loads(sys.argv[1])
    if plan["mode"] == "fsize":
        limit = int(plan["fsize_limit"])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    store = make_store(plan)
    store.start(recover=False)
    if plan.get("stall_part1_of"):
        install_stall(store, plan["bucket"], plan["stall_part1_of"])
    say(step="started", pid=__import__("os").getpid())
    {"kill": mode_kill, "recover": mode_recover, "fsize": mode_fsize}[plan["mode"]](plan, store)
    store.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
