"""``gatewayd bench voicefocus``: VoiceFocus speed and quality against its bounds.

Speed is measured here, in this process, pinned to one CPU: real-time factor (seconds of audio per
CPU second) and p50/p99 wall time per 20 ms frame, on a synthetic 8 kHz signal (voiced-speech-like
harmonics with syllable envelopes, over pink noise with clicks, so every code path runs).

Quality is measured by the shared noise-suppression harness (``../shared/bench/ns``: make_corpus.py,
eval_ns.py; PESQ-NB and STOI against the clean speech) on its synthetic corpus and on its natural
speech corpus (``--speech alsa``), both made by the harness's own generator when missing. The harness
runs in its own Python (``--harness-python``, default ``$GATEWAYD_NS_PYTHON`` or
``/tmp/nsvenv/bin/python``); when that does not exist the bench creates the virtualenv there with
``python3 -m venv`` and ``pip install numpy scipy soundfile pesq pystoi`` (``--no-create-venv`` to
refuse). The harness's full tables are printed; its summary is parsed and checked.

Bounds (exit 1 when any is missed; exit 2 when the harness cannot be run):
  PESQ-NB gain >= +0.60 (synthetic) and >= +0.55 (natural), averaged over the whole corpus;
  STOI gain >= 0 on each corpus, and >= -0.02 on babble on each;
  >= 150x real time on one core, p99 frame time < 1 ms.
``--dev`` also evaluates held-out dev corpora (another --seed), reported but not bound-checked.
``--backend`` picks the suppressor measured (``learned``, the default, or ``builtin``); both go through the
same harness factories (``media.voicefocus:make_learned_suppressor`` / ``make_suppressor``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gatewayd.config.model import DEFAULT_VOICEFOCUS_BACKEND, VOICEFOCUS_BACKENDS
from media.frame import FRAME_SAMPLES, SAMPLE_RATE

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_HARNESS = REPO.parent / "shared" / "bench" / "ns"
DEFAULT_PYTHON = "/tmp/nsvenv/bin/python"
HARNESS_PACKAGES = ["numpy", "scipy", "soundfile", "pesq", "pystoi"]
METHODS = {"builtin": "media.voicefocus:make_suppressor", "learned": "media.voicefocus:make_learned_suppressor"}
DEV_SEED = 777

PESQ_MIN = {"synthetic": 0.60, "natural": 0.55}
STOI_MIN = 0.0
STOI_BABBLE_MIN = -0.02
RTF_MIN = 150.0
P99_MAX_MS = 1.0

EX_BOUND = 1
EX_HARNESS = 2


class HarnessError(RuntimeError):
    """The shared harness is missing or failed."""


@dataclass(frozen=True)
class Corpus:
    name: str  # synthetic | natural | dev-synthetic | dev-natural
    path: Path
    make_args: tuple[str, ...]
    bounded: bool


# ---------------------------------------------------------------------------- speed
def speech_like(seconds: float, seed: int = 1) -> np.ndarray:
    """Deterministic test signal: harmonic 'syllables' over pink noise with a few clicks (int16)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    ph = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * ph) / k for k in range(1, 25) if k * 150 < 3800)
    env = np.clip(np.sin(2 * np.pi * 2.0 * t), 0, None) * (np.sin(2 * np.pi * 0.23 * t) > -0.3)
    w = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    f[0] = f[1]
    pink = np.fft.irfft(w / np.sqrt(f), n)
    pink *= 0.3 / np.std(pink)
    x = voiced * env + pink
    for p in rng.integers(0, n - 80, size=int(seconds * 4)):
        x[p:p + 80] += 3 * rng.standard_normal(80) * np.exp(-np.arange(80) / 15)
    x *= 3000 / np.std(x)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def measure_speed(seconds: float = 60.0, cpu: int | None = None,
                  backend: str = DEFAULT_VOICEFOCUS_BACKEND) -> dict[str, Any]:
    """RTF and per-frame times of one VoiceFocus (of ``backend``) on one core (affinity restored afterwards)."""
    from media.voicefocus import create  # scipy: loaded by this benchmark only, not by every gatewayd process

    x = speech_like(seconds)
    frames = [x[i:i + FRAME_SAMPLES] for i in range(0, len(x) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
    old = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    core = cpu if cpu is not None else (min(old) if old else 0)
    if old is not None:
        os.sched_setaffinity(0, {core})
    try:
        warm = create(backend)
        for fr in frames[:200]:
            warm.process(fr)
        vf = create(backend)
        times = np.empty(len(frames))
        pc = time.perf_counter
        c0 = time.process_time()
        for i, fr in enumerate(frames):
            t0 = pc()
            vf.process(fr)
            times[i] = pc() - t0
        cpu_s = time.process_time() - c0
    finally:
        if old is not None:
            os.sched_setaffinity(0, old)
    audio_s = len(frames) * FRAME_SAMPLES / SAMPLE_RATE
    ms = times * 1000
    return dict(cpu=core, audio_s=audio_s, cpu_s=cpu_s, rtf=audio_s / cpu_s if cpu_s > 0 else float("inf"),
                p50_ms=float(np.percentile(ms, 50)), p99_ms=float(np.percentile(ms, 99)),
                max_ms=float(ms.max()), frames=len(frames), latency_ms=vf.latency_samples / 8.0,
                loadavg=_loadavg())


def _loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


# ---------------------------------------------------------------------------- harness
def ensure_python(python: str, create: bool) -> str:
    if Path(python).exists():
        return python
    if not create:
        raise HarnessError(f"harness Python {python} not found (give --harness-python, or drop --no-create-venv)")
    venv = Path(python).parent.parent
    sys.stderr.write(f"bench voicefocus: creating the harness virtualenv {venv}\n")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *HARNESS_PACKAGES], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = e.stderr.decode(errors="replace")[-2000:] if isinstance(e, subprocess.CalledProcessError) else str(e)
        raise HarnessError(f"cannot create the harness virtualenv {venv}: {detail}") from e
    return python


def _run(cmd: list[str], cwd: Path, what: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log.info("running %s", " ".join(cmd))
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    except OSError as e:
        raise HarnessError(f"{what}: cannot run {cmd[0]}: {e}") from e
    if p.returncode != 0:
        raise HarnessError(f"{what} failed (exit {p.returncode}):\n{p.stdout[-2000:]}{p.stderr[-3000:]}")
    return p.stdout


def ensure_corpus(python: str, harness: Path, c: Corpus) -> None:
    if (c.path / "manifest.jsonl").exists():
        return
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise HarnessError(f"{tool} not found: the corpus generator needs it (apt-get install espeak-ng sox)")
    sys.stderr.write(f"bench voicefocus: generating the {c.name} corpus in {c.path}\n")
    _run([python, "make_corpus.py", "--out", str(c.path), *c.make_args], harness, f"make_corpus.py ({c.name})")


def evaluate(python: str, harness: Path, c: Corpus, out: Path, jobs: int,
             max_clips: int | None, method: str) -> tuple[dict[str, Any], str]:
    """Run eval_ns.py on one corpus; returns (our summary entry, the harness's markdown tables)."""
    d = out / method.rsplit(":", 1)[-1] / c.name
    d.mkdir(parents=True, exist_ok=True)
    for f in d.glob("quality_*.jsonl"):
        f.unlink()
    cmd = [python, "eval_ns.py", "--corpus", str(c.path), "--out", str(d), "--methods", method, "--jobs", str(jobs)]
    if max_clips:
        cmd += ["--max-clips", str(max_clips)]
    _run(cmd, harness, f"eval_ns.py on {c.name}")
    tables = _run([python, "eval_ns.py", "--summarize", "--out", str(d), "--methods", method], harness,
                  f"eval_ns.py --summarize on {c.name}")
    summary = parse_summary(d / "summary.json", method)
    return summary, tables


def parse_summary(path: Path, method: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise HarnessError(f"cannot read the harness summary {path}: {e}") from e
    if method not in data:
        raise HarnessError(f"harness summary {path} has no entry for {method}")
    s = data[method]
    try:
        return dict(clips=int(s["n_clips"]), mixtures=int(s["all"]["n"]),
                    d_pesq=float(s["all"]["d_pesq"]), d_stoi=float(s["all"]["d_stoi"]),
                    d_sisdr=float(s["all"]["d_sisdr"]), pesq=float(s["all"]["pesq"]),
                    pesq_fail=int(s["all"]["pesq_fail"]),
                    d_stoi_babble=float(s["by_noise"]["babble"]["d_stoi"]),
                    by_noise={k: dict(d_pesq=float(v["d_pesq"]), d_stoi=float(v["d_stoi"]))
                              for k, v in s["by_noise"].items()},
                    resid_lag_median=float(s["resid_lag_median"]), latency=s["latency"])
    except (KeyError, TypeError, ValueError) as e:
        raise HarnessError(f"unexpected harness summary format in {path}: {e!r}") from e


# ---------------------------------------------------------------------------- bounds
def check_quality(kind: str, s: dict[str, Any]) -> list[str]:
    """Missed bounds for one bounded corpus (kind: synthetic | natural)."""
    miss = []
    if not s["d_pesq"] >= PESQ_MIN[kind]:
        miss.append(f"{kind}: PESQ-NB gain {s['d_pesq']:+.3f} < +{PESQ_MIN[kind]:.2f}")
    if not s["d_stoi"] >= STOI_MIN:
        miss.append(f"{kind}: STOI gain {s['d_stoi']:+.4f} < {STOI_MIN:+.2f}")
    if not s["d_stoi_babble"] >= STOI_BABBLE_MIN:
        miss.append(f"{kind}: STOI gain on babble {s['d_stoi_babble']:+.4f} < {STOI_BABBLE_MIN:+.2f}")
    return miss


def check_speed(sp: dict[str, Any]) -> list[str]:
    miss = []
    if not sp["rtf"] >= RTF_MIN:
        miss.append(f"speed: {sp['rtf']:.0f}x real time < {RTF_MIN:.0f}x")
    if not sp["p99_ms"] < P99_MAX_MS:
        miss.append(f"speed: p99 frame time {sp['p99_ms']:.3f} ms >= {P99_MAX_MS} ms")
    return miss


def corpora(base: Path, dev: bool) -> list[Corpus]:
    cs = [Corpus("synthetic", base / "ns_corpus", (), True),
          Corpus("natural", base / "ns_corpus_alsa", ("--speech", "alsa", "--nclips", "8"), True)]
    if dev:
        cs += [Corpus("dev-synthetic", base / "ns_dev", ("--seed", str(DEV_SEED), "--nclips", "10"), False),
               Corpus("dev-natural", base / "ns_dev_alsa", ("--speech", "alsa", "--seed", str(DEV_SEED),
                                                           "--nclips", "8"), False)]
    return cs


# ---------------------------------------------------------------------------- command
def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "voicefocus", help="VoiceFocus noise suppression: speed + quality (shared harness) vs bounds",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=VOICEFOCUS_BACKENDS, default=DEFAULT_VOICEFOCUS_BACKEND,
                   help="suppressor to measure (default %(default)s)")
    p.add_argument("--json", action="store_true", help="JSON on stdout (the harness's tables go to stderr)")
    p.add_argument("--harness", type=Path, default=DEFAULT_HARNESS, help="shared harness dir (default %(default)s)")
    p.add_argument("--harness-python", default=os.environ.get("GATEWAYD_NS_PYTHON", DEFAULT_PYTHON),
                   help="Python with numpy scipy soundfile pesq pystoi (default $GATEWAYD_NS_PYTHON or %(default)s)")
    p.add_argument("--no-create-venv", action="store_true", help="fail instead of creating a missing harness venv")
    p.add_argument("--corpus-dir", type=Path, default=Path("/tmp"),
                   help="where the corpora are (ns_corpus, ns_corpus_alsa, ns_dev, ns_dev_alsa; made if missing)")
    p.add_argument("--out", type=Path, default=Path("/tmp/voicefocus_bench"), help="harness result dirs")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--max-clips", type=int, default=None, help="quick subset: N clean clips per condition")
    p.add_argument("--dev", action="store_true", help="also evaluate the held-out dev corpora (reported only)")
    p.add_argument("--speed-seconds", type=float, default=60.0)
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-quality", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    w = sys.stderr if args.json else sys.stdout
    result: dict[str, Any] = dict(backend=args.backend, bounds=dict(pesq_gain_min=PESQ_MIN, stoi_gain_min=STOI_MIN,
                                              stoi_gain_babble_min=STOI_BABBLE_MIN, rtf_min=RTF_MIN,
                                              p99_frame_ms_max=P99_MAX_MS))
    missed: list[str] = []
    if not args.skip_speed:
        sp = measure_speed(args.speed_seconds, backend=args.backend)
        result["speed"] = sp
        missed += check_speed(sp)
        w.write(f"speed ({args.backend} backend, 1 core, cpu {sp['cpu']}): {sp['rtf']:.0f}x real time, "
                f"p50 {sp['p50_ms']:.3f} ms, "
                f"p99 {sp['p99_ms']:.3f} ms, max {sp['max_ms']:.3f} ms per 20 ms frame; latency "
                f"{sp['latency_ms']:.0f} ms; load average {sp['loadavg']}\n")
    if not args.skip_quality:
        result["quality"] = {}
        try:
            harness = args.harness.resolve()
            if not (harness / "eval_ns.py").is_file() or not (harness / "make_corpus.py").is_file():
                raise HarnessError(f"shared noise-suppression harness not found at {harness} (give --harness)")
            python = ensure_python(args.harness_python, not args.no_create_venv)
            for c in corpora(args.corpus_dir, args.dev):
                ensure_corpus(python, harness, c)
                s, tables = evaluate(python, harness, c, args.out, args.jobs, args.max_clips, METHODS[args.backend])
                s["subset"] = bool(args.max_clips)
                result["quality"][c.name] = s
                w.write(f"\n## {c.name} corpus ({c.path}, {s['mixtures']} mixtures, {s['clips']} clean clips)\n\n")
                w.write(tables)
                if c.bounded:
                    missed += check_quality(c.name, s)
        except HarnessError as e:
            sys.stderr.write(f"bench voicefocus: quality evaluation unavailable: {e}\n")
            result["error"] = str(e)
            if args.json:
                sys.stdout.write(json.dumps(result, indent=1) + "\n")
            return EX_HARNESS
    result["missed"] = missed
    result["ok"] = not missed
    if args.json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
    for m in missed:
        sys.stderr.write(f"BOUND MISSED: {m}\n")
    if not missed:
        w.write("all VoiceFocus bounds met\n")
    return EX_BOUND if missed else 0
