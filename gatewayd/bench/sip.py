"""``gatewayd bench sip``: SIPp places N concurrent calls (uac_pcap audio) into a SIP target that records each.

Targets:

* ``--target driver`` (default): a :class:`~drivers.sip.line.SipLine` in this process answers every call
  with a recording port (frames leave the media thread through a bounded :class:`~media.ring.FrameRing`
  to a writer thread that streams WAV files, as RecordAudio does).
* ``--target daemon --uri sip:USER@HOST:PORT --recordings DIR [--pid PID]``: a running gatewayd whose
  handler records every call with RecordAudio into DIR (the local-directory store). The bench checks the
  WAV files that appear there and the daemon's CPU time (from /proc/PID/stat). Frames dropped inside the
  daemon are read from the recordings (missing audio), not from counters.

Reported: CPU per call (percent of one core, this process or the daemon), load average, frames dropped
(ring overflows + frames pjmedia did not deliver + RTP lost/discarded), and per call whether the recording
is complete (every repetition of the pcap audio is there) and audible. The bound: every call recorded
complete and audible with 0 frames dropped; exit status 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivers.line import IncomingCall, LineEvent, RemoteHangup
from media import g711
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples
from media.ring import FrameRing
from media.wav import WavWriter, read_wav

PCAP_DIR = Path("/usr/share/sip-tester")
PCAP_SECONDS = 7.08  # g711a.pcap: 236 packets over 7.08 s of RTP time (silence suppressed)
AUDIBLE_RMS = 200.0


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("sip", help="N concurrent SIPp calls into a recording SIP target",
                                                description=__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=8, help="concurrent calls (bound: 64 on a 2-core machine)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio per call (rounded up to whole pcap plays)")
    p.add_argument("--rate", type=float, default=20.0, help="new calls per second while ramping up")
    p.add_argument("--target", choices=("driver", "daemon"), default="driver")
    p.add_argument("--uri", default="", help="daemon target: SIP URI the calls go to")
    p.add_argument("--recordings", type=Path, help="daemon target: directory the daemon records into")
    p.add_argument("--pid", type=int, default=0, help="daemon target: process id, for its CPU time")
    p.add_argument("--keep", type=Path, help="driver target: keep the recordings in this directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


# ------------------------------------------------------------------ recording port
class RecordingPort:
    """FramePort for the bench: frames to a bounded ring (media thread), a writer thread writes the WAV."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ring: FrameRing[Samples] = FrameRing(50)
        self.writer = WavWriter(path)
        self.frames = 0
        self.ended = False

    def push_rx(self, frame: AudioFrame) -> None:
        self.ring.put(frame.samples)
        self.frames += 1

    def pull_tx(self, pts: int) -> Samples:
        return np.zeros(FRAME_SAMPLES, dtype=np.int16)

    @property
    def tx_active(self) -> bool:
        return False

    def drain(self) -> None:
        while (s := self.ring.get()) is not None:
            self.writer.write(s)


@dataclass
class CallResult:
    leg: str
    seconds: float
    frames_dropped: int
    complete: bool
    audible: bool
    min_segment_corr: float


@dataclass
class BenchResult:
    target: str
    calls: int
    seconds_per_call: float
    answered: int = 0
    completed: int = 0
    cpu_percent_per_call: float = 0.0
    cpu_percent_total: float = 0.0
    sipp_cpu_percent: float = 0.0
    loadavg: str = ""
    frames_dropped: int = 0
    rtp_discarded: int = 0  # jitter-buffer discards (SIPp's replays restart RTP sequence numbers)
    complete: int = 0
    audible: int = 0
    ok: bool = False
    detail: list[CallResult] = field(default_factory=list)
    note: str = ""


# ------------------------------------------------------------------ reference audio and checks
def pcap_reference(path: Path = PCAP_DIR / "g711a.pcap") -> Samples:
    """The A-law RTP audio of a SIPp capture, decoded and placed by RTP timestamp."""
    data = path.read_bytes()
    pos, chunks = 24, []
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        pkt = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if len(pkt) < 42 or pkt[12:14] != b"\x08\x00" or pkt[23] != 17:
            continue
        rtp = pkt[14 + (pkt[14] & 0x0F) * 4 + 8:]
        if len(rtp) > 12 and rtp[1] & 0x7F == 8:
            chunks.append((struct.unpack_from(">I", rtp, 4)[0], rtp[12:]))
    t0 = chunks[0][0]
    out = np.zeros(max(ts - t0 + len(p) for ts, p in chunks), dtype=np.int16)
    for ts, payload in chunks:
        out[ts - t0:ts - t0 + len(payload)] = g711.alaw_decode(payload)
    return out


def check_recording(rec: Samples, ref: Samples, plays: int) -> tuple[bool, bool, float]:
    """(complete, audible, worst correlation): each of the ``plays`` repetitions of ``ref`` must be found."""
    audible = bool(len(rec)) and float(np.sqrt(np.mean(rec.astype(np.float64) ** 2))) > AUDIBLE_RMS
    x = rec.astype(np.float64)
    r = ref.astype(np.float64)
    seg = 4000
    worst = 1.0
    n_ok = n = 0
    # find the first play, then each later one near where it should be (plays are back to back)
    size = 1 << int(np.ceil(np.log2(len(x) + len(r) + 1)))
    xc = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(r, size)), size)
    step = int(PCAP_SECONDS * SAMPLE_RATE)
    first = int(np.argmax(xc[:min(len(x), 2 * SAMPLE_RATE)]))
    slip = 480  # a jitter buffer may slip up to 3 frames: re-align each 0.5 s segment within that
    for k in range(plays):
        base = first + k * step
        for s in range(0, len(r) - seg + 1, seg):
            ref_seg = r[s:s + seg]
            if np.sqrt(np.mean(ref_seg ** 2)) < 30:
                continue
            n += 1
            lo = max(0, base + s - slip)
            win = x[lo:base + s + seg + slip]
            best = 0.0
            if len(win) >= seg:
                dots = np.correlate(win, ref_seg, mode="valid")
                energy = np.convolve(win * win, np.ones(seg), mode="valid")
                den = np.sqrt(energy * float(np.dot(ref_seg, ref_seg)))
                with np.errstate(divide="ignore", invalid="ignore"):
                    c = np.where(den > 0, dots / den, 0.0)
                best = float(np.max(c))
            worst = min(worst, best)
            n_ok += best > 0.9
    return (n > 0 and n_ok == n), audible, round(worst, 4)


def scenario(plays: int) -> str:
    """uac_pcap with the g711a capture played ``plays`` times back to back, then DTMF '1', then BYE."""
    # `sipp -sd` prints the built-in scenario and exits 99
    xml = subprocess.run(["sipp", "-sd", "uac_pcap"], capture_output=True, text=True, check=False).stdout
    play = ('<nop><action><exec play_pcap_audio="pcap/g711a.pcap"/></action></nop>\n'
            f'<pause milliseconds="{int(PCAP_SECONDS * 1000)}"/>\n')
    head, rest = xml.split("<!-- Play a pre-recorded PCAP file (RTP stream)", 1)
    _, tail = rest.split("<!-- Play an out of band DTMF '1'", 1)
    return head + play * plays + '<pause milliseconds="500"/>\n<!-- Play an out of band DTMF \'1\'' + tail


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _cpu_pid(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ runs
def run(args: argparse.Namespace) -> int:
    if args.calls < 1 or args.seconds <= 0:
        sys.stderr.write("gatewayd bench sip: --calls and --seconds must be positive\n")
        return 2
    if args.target == "daemon" and (not args.uri or not args.recordings):
        sys.stderr.write("gatewayd bench sip: --target daemon needs --uri and --recordings\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="gatewayd-bench-sip-") as tmp:
        work = Path(tmp)
        (work / "pcap").mkdir()
        for p in PCAP_DIR.glob("*.pcap"):
            (work / "pcap" / p.name).symlink_to(p)
        plays = max(1, math.ceil(args.seconds / PCAP_SECONDS))
        (work / "bench.xml").write_text(scenario(plays))
        if args.target == "driver":
            res = bench_driver(args, work, plays)
        else:
            res = bench_daemon(args, work, plays)
    if args.json:
        sys.stdout.write(json.dumps(asdict(res), indent=2) + "\n")
    else:
        sys.stdout.write(
            f"sip bench ({res.target}): {res.calls} calls x {res.seconds_per_call:.1f} s, answered {res.answered}, "
            f"complete {res.complete}, audible {res.audible}, frames dropped {res.frames_dropped}\n"
            f"  CPU {res.cpu_percent_per_call:.2f} % of a core per call ({res.cpu_percent_total:.1f} % total; "
            f"SIPp {res.sipp_cpu_percent:.1f} %), load average {res.loadavg}\n"
            f"  {'OK' if res.ok else 'BOUND MISSED'}{': ' + res.note if res.note else ''}\n")
    return 0 if res.ok else 1


def _sipp(work: Path, uri_or_target: str, calls: int, rate: float, timeout: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["sipp", uri_or_target, "-sf", str(work / "bench.xml"), "-i", "127.0.0.1", "-p", str(_free_port()),
         "-mp", str(_free_port() & ~1),
         "-m", str(calls), "-l", str(calls), "-r", str(rate), "-nostdin", "-timeout", f"{int(timeout)}s",
         "-timeout_error", "-trace_err", "-error_file", str(work / "sipp-errors.log")],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def bench_driver(args: argparse.Namespace, work: Path, plays: int) -> BenchResult:
    from drivers.sip.config import SipTrunkConfig
    from drivers.sip.line import SipLine

    seconds = plays * PCAP_SECONDS
    res = BenchResult("driver", args.calls, seconds)
    outdir = args.keep or work / "rec"
    outdir.mkdir(parents=True, exist_ok=True)
    ports: dict[str, RecordingPort] = {}
    hung: set[str] = set()
    lock = threading.Lock()
    line = SipLine(SipTrunkConfig("bench", port=0, allowed_peers=("127.0.0.1",), rtp_timeout_s=10))

    def sink(ev: LineEvent) -> None:
        if isinstance(ev, IncomingCall):
            port = RecordingPort(outdir / f"{ev.leg_id}.wav")
            with lock:
                ports[ev.leg_id] = port
            line.answer(ev.leg_id, port)
        elif isinstance(ev, RemoteHangup):
            with lock:
                hung.add(ev.leg_id)

    stop_writer = threading.Event()

    def writer() -> None:
        while not stop_writer.is_set():
            with lock:
                current = list(ports.values())
            for p in current:
                p.drain()
            stop_writer.wait(0.1)

    wt = threading.Thread(target=writer, name="bench-writer", daemon=True)
    line.start(sink)
    wt.start()
    timeout = seconds + args.calls / args.rate + 60
    try:
        cpu0, t0, child0 = _cpu_self(), time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = _sipp(work, f"127.0.0.1:{line.local_port()}", args.calls, args.rate, timeout)
        _, err = proc.communicate(timeout=timeout + 30)
        deadline = time.monotonic() + 10
        while len(hung) < len(ports) and time.monotonic() < deadline:
            time.sleep(0.1)
        cpu1, t1, child1 = _cpu_self(), time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        res.loadavg = _loadavg()
        stats = {leg: line.leg_stats(leg) for leg in ports}
    finally:
        line.stop()
        stop_writer.set()
        wt.join()
    if proc.returncode != 0:
        res.note = f"SIPp exit {proc.returncode}: {err.strip()[-300:]}"
    wall = t1 - t0
    res.cpu_percent_total = round(100 * (cpu1 - cpu0) / wall, 2)
    res.cpu_percent_per_call = round(res.cpu_percent_total / args.calls, 3)
    sipp_cpu = (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    res.sipp_cpu_percent = round(100 * sipp_cpu / wall, 2)
    res.answered = len(ports)
    res.completed = len(hung)
    ref = pcap_reference()
    for leg, port in ports.items():
        port.drain()
        port.writer.close(fsync=False)
        st = stats.get(leg)
        # dropped here: ring overflow (writer behind), frames pjmedia could not deliver, RTP lost on the way in
        # (socket overflow when the receive thread falls behind). Jitter-buffer discards are counted apart:
        # SIPp replays the capture with the same RTP sequence numbers, so each replay restarts the stream.
        dropped = port.ring.dropped + (st.bad_frames + st.rtp_lost if st else 0)
        res.rtp_discarded += st.rtp_discarded if st else 0
        if os.environ.get("GATEWAYD_BENCH_DEBUG"):
            sys.stderr.write(f"{leg}: ring dropped {port.ring.dropped}, {st}\n")
        rec = read_wav(port.path)
        complete, audible, worst = check_recording(rec, ref, plays)
        res.detail.append(CallResult(leg, round(len(rec) / SAMPLE_RATE, 2), dropped, complete, audible, worst))
    _summarise(res)
    return res


def bench_daemon(args: argparse.Namespace, work: Path, plays: int) -> BenchResult:
    seconds = plays * PCAP_SECONDS
    res = BenchResult("daemon", args.calls, seconds)
    recdir: Path = args.recordings
    before = set(recdir.rglob("*.wav")) if recdir.exists() else set()
    timeout = seconds + args.calls / args.rate + 60
    target = args.uri.split(":", 1)[1] if args.uri.startswith("sip:") else args.uri
    service, _, hostport = target.rpartition("@")
    cpu0 = _cpu_pid(args.pid) if args.pid else 0.0
    t0, child0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd_extra = ["-s", service] if service else []
    proc = subprocess.Popen(
        ["sipp", hostport, *cmd_extra, "-sf", str(work / "bench.xml"), "-i", "127.0.0.1", "-p", str(_free_port()),
         "-mp", str(_free_port() & ~1),
         "-m", str(args.calls), "-l", str(args.calls), "-r", str(args.rate), "-nostdin", "-timeout",
         f"{int(timeout)}s", "-timeout_error"], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=timeout + 30)
    time.sleep(3)  # the daemon closes and stores its recordings
    t1, child1 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = t1 - t0
    if args.pid:
        res.cpu_percent_total = round(100 * (_cpu_pid(args.pid) - cpu0) / wall, 2)
        res.cpu_percent_per_call = round(res.cpu_percent_total / args.calls, 3)
    sipp_cpu = (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    res.sipp_cpu_percent = round(100 * sipp_cpu / wall, 2)
    res.loadavg = _loadavg()
    if proc.returncode != 0:
        res.note = f"SIPp exit {proc.returncode}: {err.strip()[-300:]}"
    new = sorted(set(recdir.rglob("*.wav")) - before)
    res.answered = res.completed = len(new)
    ref = pcap_reference()
    for path in new:
        rec = read_wav(path)
        complete, audible, worst = check_recording(rec, ref, plays)
        # a recording shorter than the calls' audio lost frames somewhere in the daemon
        missing = max(0, int((seconds * SAMPLE_RATE - len(rec)) // FRAME_SAMPLES)) if not complete else 0
        res.detail.append(CallResult(path.name, round(len(rec) / SAMPLE_RATE, 2), missing, complete, audible, worst))
    _summarise(res)
    return res


def _summarise(res: BenchResult) -> None:
    res.frames_dropped = sum(c.frames_dropped for c in res.detail)
    res.complete = sum(c.complete for c in res.detail)
    res.audible = sum(c.audible for c in res.detail)
    res.ok = (res.answered == res.calls and res.complete == res.calls and res.audible == res.calls
              and res.frames_dropped == 0 and not res.note)
