"""``gatewayd simulate SCENARIO.yaml [--json] [--buckets DIR]``: one call against a handler, no phone.

The daemon's runtime runs the call on a virtual exchange on media time; the transcript (every event
sent and every response received, in order) and where each recording went are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from gatewayd.config import EX_CONFIG, ApplicationConfig, Config, ConfigError
from gatewayd.factories import fetcher, media_factories
from gatewayd.invokers import make_invoker
from gatewayd.runtime.prompts import PromptLoader
from gatewayd.scenario import Scenario, build_caller, build_far_ends, load_scenario, render
from gatewayd.simulate import Exchange, Simulation, SimulationResult
from gatewayd.store import LocalDirectoryConfig, RecordingStore, StoreConfig, StoreEvent
from media.wav import encode_wav, read_info

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "simulate", help="run one call on an emulated line against a handler and print the transcript")
    p.add_argument("scenario", help="scenario YAML (see README, 'Trying a handler without a phone')")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--buckets", help="directory for the scenario's local buckets (default: a new temporary one)")
    p.set_defaults(func=run)


def _recordings(opened: list[tuple[str, str]], result: SimulationResult, root: Path) -> list[dict[str, Any]]:
    """Every recording the store took (RecordAudio and StartCallRecording), where it is on disk."""
    terminators = {}
    for ex in result.transcript:
        ad = ex.event.get("ActionData") or {}
        dest = ad.get("RecordingDestination")
        if isinstance(dest, dict) and "Key" in dest:
            terminators[(dest.get("BucketName"), dest["Key"])] = ad.get("RecordingTerminatorUsed")
    out = []
    for bucket, key in opened:
        path = root / bucket / key
        info = read_info(path) if path.exists() else None
        out.append({"bucket": bucket, "key": key, "path": str(path),
                    "seconds": round(info.frames / info.sample_rate, 3) if info else None,
                    "channels": info.channels if info else None, "terminator": terminators.get((bucket, key))})
    return out


def _text(ex: Exchange, n: int) -> str:
    ev = ex.event
    head = f"#{n} → {ev.get('InvocationEventType')}"
    ad = ev.get("ActionData")
    if isinstance(ad, dict):
        head += f" {ad.get('Type')}"
        if "ErrorType" in ad:
            head += f" [{ad['ErrorType']}: {ad.get('ErrorMessage')}]"
    lines = [head, "   event:    " + json.dumps(ev, sort_keys=True)]
    resp = ex.response
    lines.append("   response: " + (json.dumps(resp, sort_keys=True) if not hasattr(resp, "error")
                                    else f"(invocation failed: {resp.error}: {resp.message})"))
    return "\n".join(lines)


def _seed(s: Scenario, base: Path, root: Path) -> None:
    for bucket, spec in s.buckets.items():
        (root / bucket).mkdir(parents=True, exist_ok=True)
        for key, item in spec.files.items():
            path = root / bucket / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_wav(render(item, base)))


def run(args: argparse.Namespace) -> int:
    path = Path(args.scenario)
    try:
        scenario = load_scenario(path)
        base = path.resolve().parent
        root = Path(args.buckets) if args.buckets else Path(tempfile.mkdtemp(prefix="gatewayd-sim-"))
        root.mkdir(parents=True, exist_ok=True)
        _seed(scenario, base, root)
        caller = build_caller(scenario, base)
        far_ends, default_far_end = build_far_ends(scenario, base)
    except ConfigError as e:
        for p in e.problems:
            sys.stderr.write(f"{p}\n")
        return EX_CONFIG
    opened: list[tuple[str, str]] = []

    def listen(ev: StoreEvent) -> None:
        if ev.name == "opened":
            opened.append((str(ev.fields["bucket"]), str(ev.fields["key"])))

    store = RecordingStore(StoreConfig(spool_dir=root / ".spool", default_backend=LocalDirectoryConfig(root)),
                           listener=listen)
    store.start()
    app = ApplicationConfig(name="simulation", handler=scenario.handler, environment=dict(scenario.environment))
    media = media_factories(Config())
    if not scenario.voicefocus:
        from dataclasses import replace

        media = replace(media, suppressor=None)
    try:
        with make_invoker(scenario.handler, environment=scenario.environment) as invoker:
            sim = Simulation(app, invoker, store, PromptLoader(fetcher(store)), media=media, far_ends=far_ends,
                             default_far_end=default_far_end, max_seconds=scenario.max_seconds)
            result = asyncio.run(sim.run(caller))
    except ValueError as e:  # not a handler target
        sys.stderr.write(f"{path}: handler: {e}\n")
        return EX_CONFIG
    finally:
        store.stop(10.0)
    recordings = _recordings(opened, result, root)
    if args.json:
        doc = {"transcript": [{"event": ex.event, "response": ex.response if not hasattr(ex.response, "error")
                               else {"invocation_error": str(ex.response.error), "message": ex.response.message}}
                              for ex in result.transcript],
               "recordings": recordings, "media_seconds": result.seconds, "end": result.end_reasons,
               "buckets": str(root)}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for i, ex in enumerate(result.transcript, 1):
            sys.stdout.write(_text(ex, i) + "\n")
        sys.stdout.write(f"call ended ({', '.join(result.end_reasons) or 'still open'}) after "
                         f"{result.seconds:.2f} s of media time; buckets in {root}\n")
        for r in recordings:
            sys.stdout.write(f"recording s3://{r['bucket']}/{r['key']} → {r['path']} ({r['seconds']} s"
                             + (f", ended by {r['terminator']}" if r["terminator"] else "") + ")\n")
    return 0
