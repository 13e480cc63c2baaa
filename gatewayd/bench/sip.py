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
import os
import resource
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

from drivers.line import IncomingCall, LineEvent
from gatewayd.testing.ports import free_port
from media import g711
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples
from media.ring import FrameRing
from media.wav import WavWriter, read_wav

PCAP_DIR = Path("/usr/share/sip-tester")
AUDIBLE_RMS = 200.0
RTP_BASE = 40000  # driver target: worker k takes RTP ports RTP_BASE + k * RTP_PORTS_PER_WORKER upwards
RTP_PORTS_PER_WORKER = 400


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("sip", help="N concurrent SIPp calls into a recording SIP target",
                                                description=__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=8, help="concurrent calls (bound: 64 on a 2-core machine)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio per call")
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
    rtp_discarded: int = 0  # of which discarded by pjmedia's jitter buffer
    frames_concealed: int = 0  # jitter-buffer underruns and losses filled by PLC (incl. the start-up prefetch)
    processes: int = 1  # driver target: SIP processes (the wheel takes 4 calls per process)
    calls_per_process: int = 0
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


def check_recording(rec: Samples, ref: Samples) -> tuple[bool, bool, float]:
    """(complete, audible, worst segment correlation) of a recording against the audio that was sent.

    The reference is found by cross-correlation (the delay search); then every 0.5 s segment with sound in
    it must correlate above 0.9 within ±3 frames of the previous segment's alignment, and the alignment
    must not move: a lost, discarded or inserted frame breaks the segment it falls in, or moves the next.
    """
    audible = bool(len(rec)) and float(np.sqrt(np.mean(rec.astype(np.float64) ** 2))) > AUDIBLE_RMS
    x = rec.astype(np.float64)
    r = ref.astype(np.float64)
    if len(x) < SAMPLE_RATE:
        return False, audible, 0.0
    seg = 4000
    worst = 1.0
    n_ok = n = 0
    size = 1 << int(np.ceil(np.log2(len(x) + len(r) + 1)))
    xc = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(r, size)), size)
    # the delay search: -1 s (the recording began after the far end started sending) to +2 s
    lags = np.concatenate([np.arange(-SAMPLE_RATE, 0), np.arange(0, min(len(x), 2 * SAMPLE_RATE))])
    base = int(lags[np.argmax(xc[lags])])
    slip = 480
    slips = 0
    for s in range(0, len(r) - seg + 1, seg):
        ref_seg = r[s:s + seg]
        if np.sqrt(np.mean(ref_seg ** 2)) < 30:
            continue
        n += 1
        lo = base + s - slip
        win = x[max(0, lo):max(0, base + s + seg + slip)]
        best = 0.0
        if lo < 0 and s == 0:
            n -= 1  # the first segment began before the call was connected: nothing to compare
            continue
        if len(win) >= seg:
            dots = np.correlate(win, ref_seg, mode="valid")
            energy = np.convolve(win * win, np.ones(seg), mode="valid")
            den = np.sqrt(energy * float(np.dot(ref_seg, ref_seg)))
            with np.errstate(divide="ignore", invalid="ignore"):
                c = np.where(den > 0, dots / den, 0.0)
            best = float(np.max(c))
            if best > 0.95:  # follow the alignment: a concealed or dropped frame moves the rest of the call
                found = max(0, lo) + int(np.argmax(c)) - s
                if abs(found - base) > 8:
                    slips += 1  # audio moved between two segments: frames were dropped or inserted there
                base = found
        worst = min(worst, best)
        n_ok += best > 0.9
    return (n > 0 and n_ok == n and slips == 0), audible, round(worst, 4)


def reference_signal(seconds: float) -> Samples:
    """The bench's call audio: the speech of SIPp's g711a capture, repeated to ``seconds``."""
    one = pcap_reference()
    n = round(seconds * SAMPLE_RATE / FRAME_SAMPLES) * FRAME_SAMPLES
    return np.resize(one, n).astype(np.int16)


def write_pcap(path: Path, samples: Samples) -> None:
    """A capture of one continuous PCMA RTP stream (20 ms packets, increasing sequence and timestamp)
    for SIPp's ``play_pcap_audio`` (a replayed capture would restart RTP sequence numbers at each play)."""
    codes = g711.alaw_encode(samples).tobytes()
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for k in range(len(codes) // FRAME_SAMPLES):
        rtp = struct.pack(">BBHII", 0x80, 8, k & 0xFFFF, k * FRAME_SAMPLES, 0x6A7E5B01)
        rtp += codes[k * FRAME_SAMPLES:(k + 1) * FRAME_SAMPLES]
        udp = struct.pack(">HHHH", 20000, 6000, 8 + len(rtp), 0) + rtp
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), k & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        usec = k * 20000
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


def scenario(seconds: float) -> str:
    """SIPp's uac_pcap playing ``bench.pcap`` (``seconds`` of audio) instead of g711a, without the DTMF
    capture (its replayed RTP stream is discarded by the jitter buffer, which would count as a drop)."""
    # `sipp -sd` prints the built-in scenario and exits 99
    xml = subprocess.run(["sipp", "-sd", "uac_pcap"], capture_output=True, text=True, check=False).stdout
    play = ('<nop><action><exec play_pcap_audio="bench.pcap"/></action></nop>\n'
            f'<pause milliseconds="{int(seconds * 1000) + 300}"/>\n')
    head, rest = xml.split("<!-- Play a pre-recorded PCAP file (RTP stream)", 1)
    _, tail = rest.split("<!-- The 'crlf' option inserts a blank line", 1)
    return head + play + "<!-- The 'crlf' option inserts a blank line" + tail


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


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
        ref = reference_signal(args.seconds)
        write_pcap(work / "bench.pcap", ref)
        (work / "bench.xml").write_text(scenario(len(ref) / SAMPLE_RATE))
        if args.target == "driver":
            res = bench_driver(args, work, ref)
        else:
            res = bench_daemon(args, work, ref)
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


def _sipp(work: Path, target: str, calls: int, rate: float, timeout: float,
          destinations: list[int] | None = None) -> subprocess.Popen[str]:
    """SIPp running the bench scenario; with ``destinations`` each call goes to the next port of the list."""
    extra: list[str] = []
    if destinations:
        csv = work / "dest.csv"
        csv.write_text("SEQUENTIAL\n" + "".join(f"{p};\n" for p in destinations))
        extra = ["-inf", str(csv)]
    return subprocess.Popen(
        ["sipp", target, "-sf", str(work / ("bench-dest.xml" if destinations else "bench.xml")), "-i", "127.0.0.1",
         "-p", str(free_port()), "-mp", str(free_port() & ~1), "-m", str(calls), "-l", str(calls),
         "-r", str(rate), "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err",
         "-error_file", str(work / "sipp-errors.log"), *extra],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")


def with_destinations(xml: str) -> str:
    """The scenario with a ``setdest`` to the port in the injection file's first field before the INVITE."""
    marker = "<send retrans=\"500\">"
    at = xml.index(marker)
    hop = '<nop><action><setdest host="127.0.0.1" port="[field0]" protocol="udp"/></action></nop>\n'
    return xml[:at] + hop + xml[at:]


# ------------------------------------------------------------------ driver target: recording worker(s)
def serve(outdir: Path, announce: Any, stop: threading.Event, rtp_port: int = 0) -> dict[str, Any]:
    """Run a recording SipLine until ``stop``; ``announce(port, max_calls)`` once it listens.

    Returns this process's CPU seconds while serving and, per leg, its counters and recording path.
    """
    from drivers.sip.config import SipTrunkConfig
    from drivers.sip.line import SipLine

    outdir.mkdir(parents=True, exist_ok=True)
    ports: dict[str, RecordingPort] = {}
    lock = threading.Lock()
    line = SipLine(SipTrunkConfig("bench", port=0, allowed_peers=("127.0.0.1",), rtp_timeout_s=10,
                                  rtp_port=rtp_port, rtp_port_range=RTP_PORTS_PER_WORKER if rtp_port else 0))

    def sink(ev: LineEvent) -> None:
        if isinstance(ev, IncomingCall):
            port = RecordingPort(outdir / f"{ev.leg_id}.wav")
            with lock:
                ports[ev.leg_id] = port
            line.answer(ev.leg_id, port)

    def writer() -> None:
        while not stop.is_set():
            with lock:
                current = list(ports.values())
            for p in current:
                p.drain()
            stop.wait(0.1)

    wt = threading.Thread(target=writer, name="bench-writer", daemon=True)
    line.start(sink)
    cpu0 = _cpu_self()
    wt.start()
    try:
        announce(line.local_port(), line.max_calls)
        stop.wait()
        cpu = _cpu_self() - cpu0
        stats = {leg: line.leg_stats(leg) for leg in ports}
    finally:
        line.stop()
        stop.set()
        wt.join()
    legs: dict[str, Any] = {}
    for leg, port in ports.items():
        port.drain()
        port.writer.close(fsync=False)
        st = stats.get(leg)
        legs[leg] = {"path": str(port.path), "ring_dropped": port.ring.dropped,
                     "stats": asdict(st) if st is not None else None}
    return {"cpu_s": cpu, "legs": legs}


def _worker_main(outdir: str, rtp_port: int) -> int:
    """``python -m gatewayd.bench.sip OUTDIR RTP_PORT``: one serving process (stdin closed = stop)."""
    stop = threading.Event()

    def announce(port: int, max_calls: int) -> None:
        sys.stdout.write(f"READY {port} {max_calls}\n")
        sys.stdout.flush()

    def wait_stdin() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    summary = serve(Path(outdir), announce, stop, rtp_port)
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


class _Worker:
    def __init__(self, outdir: Path, rtp_port: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "gatewayd.bench.sip", str(outdir), str(rtp_port)],
                                     text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 3 or line[0] != "READY":
            self.proc.kill()
            raise RuntimeError(f"bench worker did not start: {line}")
        self.port, self.max_calls = int(line[1]), int(line[2])

    def finish(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(input="", timeout=60)
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result


def bench_driver(args: argparse.Namespace, work: Path, ref: Samples) -> BenchResult:
    """SIPp into recording SipLine worker processes: as many as the build's calls-per-process limit needs."""
    seconds = len(ref) / SAMPLE_RATE
    res = BenchResult("driver", args.calls, seconds)
    outdir = args.keep or work / "rec"
    # separate RTP port ranges, so that workers do not race each other for RTP/RTCP pairs
    workers = [_Worker(outdir / "w0", RTP_BASE)]
    per = max(1, workers[0].max_calls)
    while per * len(workers) < args.calls:
        workers.append(_Worker(outdir / f"w{len(workers)}", RTP_BASE + RTP_PORTS_PER_WORKER * len(workers)))
    res.processes = len(workers)
    res.calls_per_process = per
    xml = (work / "bench.xml").read_text()
    (work / "bench-dest.xml").write_text(with_destinations(xml))
    destinations = [w.port for w in workers for _ in range(per)][:args.calls]
    timeout = seconds + args.calls / args.rate + 60
    t0, child0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = _sipp(work, f"127.0.0.1:{workers[0].port}", args.calls, args.rate, timeout,
                 destinations if len(workers) > 1 else None)
    _, err = proc.communicate(timeout=timeout + 30)
    t1, child1 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    sipp_cpu = (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    res.loadavg = _loadavg()
    summaries = [w.finish() for w in workers]
    if proc.returncode != 0:
        res.note = f"SIPp exit {proc.returncode}: {err.strip()[-300:]}"
    wall = t1 - t0
    cpu = sum(float(s["cpu_s"]) for s in summaries)
    res.cpu_percent_total = round(100 * cpu / wall, 2)
    res.cpu_percent_per_call = round(res.cpu_percent_total / args.calls, 3)
    res.sipp_cpu_percent = round(100 * sipp_cpu / wall, 2)
    for summary in summaries:
        for leg, info in summary["legs"].items():
            st = info["stats"] or {}
            res.answered += 1
            res.completed += 1
            # dropped: ring overflow (writer behind), frames pjmedia could not deliver, RTP lost on the way in
            # (socket overflow when the receive thread falls behind) and discarded by pjmedia's jitter buffer
            dropped = (int(info["ring_dropped"]) + int(st.get("bad_frames", 0)) + int(st.get("rtp_lost", 0))
                       + int(st.get("rtp_discarded", 0)) + int(st.get("jb_discarded", 0)))
            if os.environ.get("GATEWAYD_BENCH_DEBUG"):
                sys.stderr.write(f"{leg}: ring dropped {info['ring_dropped']}, {st}\n")
            res.rtp_discarded += int(st.get("rtp_discarded", 0)) + int(st.get("jb_discarded", 0))
            res.frames_concealed += int(st.get("jb_empty", 0)) + int(st.get("jb_lost", 0))
            rec = read_wav(info["path"])
            complete, audible, worst = check_recording(rec, ref)
            res.detail.append(CallResult(leg, round(len(rec) / SAMPLE_RATE, 2), dropped, complete, audible, worst))
    _summarise(res)
    return res


def bench_daemon(args: argparse.Namespace, work: Path, ref: Samples) -> BenchResult:
    seconds = len(ref) / SAMPLE_RATE
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
        ["sipp", hostport, *cmd_extra, "-sf", str(work / "bench.xml"), "-i", "127.0.0.1", "-p", str(free_port()),
         "-mp", str(free_port() & ~1),
         "-m", str(args.calls), "-l", str(args.calls), "-r", str(args.rate), "-nostdin", "-timeout",
         f"{int(timeout)}s", "-timeout_error"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
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
    for path in new:
        rec = read_wav(path)
        complete, audible, worst = check_recording(rec, ref)
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


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1], int(sys.argv[2])))
