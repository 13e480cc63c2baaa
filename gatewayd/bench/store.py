"""``gatewayd bench store``: recording store, stop → object-complete latency and memory.

Starts its own SeaweedFS (``weed mini`` on loopback, the same launcher as the tests), then records
1-, 10- and 60-minute recordings through the runtime's API (``open_recording`` → ``put`` of 20 ms
int16 frames → ``finish``), generated faster than real time. Before each stop it lets the parts that
would have been streamed during a real-time recording finish (as they do in real time), then measures
from ``finish()`` to the object being complete (PUT or CompleteMultipartUpload returned) and to it
being confirmed (metadata, ACL, HEAD). Peak RSS is taken over a 60-minute recording, from just before
it is opened to its confirmation.

Bounds: p95 of stop → object complete ≤ 300 ms for every length; RSS growth during the 60-minute
recording ≤ 20 MB. Exits 1 when a bound is missed, 2 when the benchmark cannot run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from gatewayd.store import RecordingStore, S3EndpointConfig, StoreConfig, StoreEvent
from gatewayd.store.metrics import percentile
from gatewayd.store.parts import streamable_parts
from gatewayd.store.recording import Recording
from gatewayd.testing.seaweedfs import SeaweedS3

log = logging.getLogger(__name__)

FRAME = 160
RATE = 8000
BUCKET = "bench-recordings"
LATENCY_BOUND_MS = 300.0
RSS_BOUND_MB = 20.0


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("store", help="recording store: stop -> object complete, RSS",
                                                description=__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--runs", default="1:20,10:10,60:3",
                   help="MINUTES:RUNS list (default 1:20,10:10,60:3)")
    p.add_argument("--latency-bound-ms", type=float, default=LATENCY_BOUND_MS)
    p.add_argument("--rss-bound-mb", type=float, default=RSS_BOUND_MB)
    p.add_argument("--workdir", type=Path, help="keep SeaweedFS data and the spool here (default: a temp dir)")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------------------------- memory
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


class RssSampler:
    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.max_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max_kb = max(self.max_kb, _status_kb("VmRSS"))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------------------------- recording
class Latencies:
    def __init__(self) -> None:
        self.complete: dict[str, float] = {}
        self.confirmed: dict[str, float] = {}

    def __call__(self, e: StoreEvent) -> None:
        lat = e.fields.get("latency")
        if isinstance(lat, float):
            if e.name == "object_complete":
                self.complete[e.recording_id] = lat
            elif e.name == "confirmed":
                self.confirmed[e.recording_id] = lat


def _source() -> np.ndarray:
    """60 s of speech-like noise (band-limited, syllabic envelope), cycled to make any length."""
    rng = np.random.default_rng(1234)
    n = RATE * 60
    x = np.convolve(rng.normal(0, 3000, n), np.ones(4) / 4, mode="same")
    env = 0.3 + 0.7 * (np.sin(2 * np.pi * 4 * np.arange(n) / RATE) > 0)
    return np.clip(x * env, -32768, 32767).astype(np.int16)


def _quiesce(store: RecordingStore, rec: Recording, timeout: float = 120.0) -> None:
    """Wait until what a real-time recording would have streamed by now is streamed, and on disk."""
    cfg = store.config
    holdback = round(cfg.holdback_seconds * rec.sample_rate) * 2 * rec.channels
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with rec.cv:
            synced_all = rec.synced_bytes >= rec.written_bytes and rec.written_bytes >= 44 + 2 * rec.samples_put
            pending = streamable_parts(rec.synced_bytes, holdback, cfg.part_size,
                                       [p.number for p in rec.sidecar.parts])
        if synced_all and not pending:
            return
        time.sleep(0.01)
    raise RuntimeError(f"recording {rec.recording_id}: parts not streamed within {timeout} s")


def record(store: RecordingStore, source: np.ndarray, minutes: float, tag: str,
           progress: list[int] | None = None) -> Recording:
    rec = store.open_recording(BUCKET, f"bench/{tag}.wav", transaction_id=f"tx-{tag}", call_id=f"call-{tag}")
    total = round(minutes * 60 * RATE)
    n = len(source)
    limit = rec.ring.capacity // 2
    marks = [total * k // 4 for k in (1, 2, 3)]
    for i in range(0, total, FRAME):
        j = i % n
        frame = source[j:j + FRAME]
        if len(frame) < FRAME:
            frame = np.concatenate((frame, source[:FRAME - len(frame)]))
        while len(rec.ring) > limit and rec.accepting:  # the bench may wait for the writer; the media path never does
            time.sleep(0.0005)
        rec.put(frame)
        if progress is not None and marks and i >= marks[0]:
            marks.pop(0)
            progress.append(_status_kb("VmRSS"))
    _quiesce(store, rec)
    return rec


def _weed_version(weed: str) -> str:
    try:
        out = subprocess.run([weed, "version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (out.strip().splitlines() or ["unknown"])[0]


def _parse_runs(spec: str) -> list[tuple[float, int]]:
    out = []
    for item in spec.split(","):
        m, _, r = item.partition(":")
        out.append((float(m), int(r or 1)))
    return out


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    plan = _parse_runs(args.runs)
    source = _source()
    with SeaweedS3(workdir / "seaweedfs") as s3:
        s3.create_bucket(BUCKET)
        c = s3.credentials
        backend = S3EndpointConfig(endpoint_url=s3.endpoint_url, region_name=c.region, access_key_id=c.access_key_id,
                                   secret_access_key=c.secret_access_key, addressing_style="path")
        lat = Latencies()
        store = RecordingStore(StoreConfig(spool_dir=workdir / "spool", buckets={BUCKET: backend}), listener=lat)
        store.start(recover=False)
        results: dict[str, Any] = {}
        rss: dict[str, Any] = {}
        try:
            warm = record(store, source, 0.1, "warmup")  # connections, and the bucket's first volume
            if not warm.finish().result(60).ok:
                raise RuntimeError("warm-up recording was not uploaded")
            for minutes, runs in plan:
                complete, confirmed = [], []
                size = 0
                for k in range(runs):
                    tag = f"{minutes:g}min-{k}"
                    big = minutes >= 60 and not rss
                    if big:
                        baseline = _status_kb("VmRSS")
                        hwm_reset = _reset_peak_rss()
                        progress: list[int] = []
                        with RssSampler() as sampler:
                            rec = record(store, source, minutes, tag, progress)
                            out = rec.finish().result(120)
                        peak = max(sampler.max_kb, _status_kb("VmHWM") if hwm_reset else 0)
                        rss = {"baseline_mb": baseline / 1024, "peak_mb": peak / 1024,
                               "growth_mb": (peak - baseline) / 1024,
                               "at_25_50_75_percent_mb": [v / 1024 for v in progress],
                               "after_mb": _status_kb("VmRSS") / 1024, "peak_source": "VmHWM" if hwm_reset
                               else "sampled VmRSS"}
                    else:
                        rec = record(store, source, minutes, tag)
                        out = rec.finish().result(120)
                    if not out.ok:
                        raise RuntimeError(f"{tag}: upload failed: {out.detail}")
                    complete.append(lat.complete[rec.recording_id] * 1000)
                    confirmed.append(lat.confirmed[rec.recording_id] * 1000)
                    size = rec.sidecar.size or 0
                results[f"{minutes:g}min"] = {
                    "runs": runs, "object_bytes": size,
                    "complete_ms": {"p50": percentile(complete, 50), "p95": percentile(complete, 95),
                                    "max": max(complete)},
                    "confirmed_ms": {"p50": percentile(confirmed, 50), "p95": percentile(confirmed, 95),
                                     "max": max(confirmed)},
                }
        finally:
            store.stop()
        return {"latency": results, "rss": rss, "server": _weed_version(s3.weed),
                "spool_errors": store.metrics.snapshot()["spool_errors"]}


def run(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()
    try:
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            data = measure(args, args.workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="gatewayd-bench-store-") as tmp:
                data = measure(args, Path(tmp))
    except Exception as e:
        log.exception("bench store failed")
        sys.stderr.write(f"bench store: {e}\n")
        return 2
    failures = []
    for name, r in data["latency"].items():
        if r["complete_ms"]["p95"] > args.latency_bound_ms:
            failures.append(f"{name}: p95 stop->object complete {r['complete_ms']['p95']:.0f} ms "
                            f"> {args.latency_bound_ms:g} ms")
    if data["rss"] and data["rss"]["growth_mb"] > args.rss_bound_mb:
        failures.append(f"RSS grew {data['rss']['growth_mb']:.1f} MB during a 60-minute recording "
                        f"> {args.rss_bound_mb:g} MB")
    report = {"bench": "store", **data,
              "bounds": {"complete_p95_ms": args.latency_bound_ms, "rss_growth_mb": args.rss_bound_mb},
              "load_average": {"before": load_before, "after": os.getloadavg()}, "cpus": os.cpu_count(),
              "ok": not failures, "failures": failures}
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        lines = [f"bench store ({data['server']}; load average before {load_before[0]:.2f}, "
                 f"after {report['load_average']['after'][0]:.2f}, {os.cpu_count()} CPUs)"]
        for name, r in data["latency"].items():
            lines.append(f"  {name:>6} x{r['runs']:<3} {r['object_bytes']:>10} B  stop->complete p50 "
                         f"{r['complete_ms']['p50']:6.1f} p95 {r['complete_ms']['p95']:6.1f} ms   ->confirmed p50 "
                         f"{r['confirmed_ms']['p50']:6.1f} p95 {r['confirmed_ms']['p95']:6.1f} ms")
        if data["rss"]:
            rss = data["rss"]
            lines.append(f"  RSS over a 60-minute recording: baseline {rss['baseline_mb']:.1f} MB, peak "
                         f"{rss['peak_mb']:.1f} MB, growth {rss['growth_mb']:.1f} MB")
        else:
            lines.append("  RSS not measured (no 60-minute run)")
        lines += [f"  FAIL {f}" for f in failures] or ["  all bounds met"]
        sys.stdout.write("\n".join(lines) + "\n")
    return 1 if failures else 0
