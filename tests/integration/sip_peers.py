"""Helpers for SIP integration tests: real SIPp and baresip on loopback, ephemeral ports, audio checks."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from drivers.line import IncomingCall, LineEvent
from gatewayd.testing.ports import free_port
from media import g711
from media.frame import FRAME_SAMPLES, AudioFrame, Samples

SIPP_PCAP_DIR = Path("/usr/share/sip-tester")  # Debian sip-tester ships the captures uac_pcap plays
BARESIP_MODULES = Path("/usr/lib/baresip/modules")

E = TypeVar("E", bound=LineEvent)


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed (tools/dev installs it)")
    return path


def free_port_block(n: int = 4) -> int:
    """An even UDP port with the ``n`` ports from it free (an RTP/RTCP pair or several)."""
    for _ in range(200):
        base = free_port() & ~1
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port block")


# ------------------------------------------------------------------ events and ports
class Events:
    """Thread-safe collector of line events with a blocking wait."""

    def __init__(self) -> None:
        self.items: list[LineEvent] = []
        self._cv = threading.Condition()
        self.on_event: Callable[[LineEvent], None] | None = None

    def __call__(self, ev: LineEvent) -> None:
        with self._cv:
            self.items.append(ev)
            self._cv.notify_all()
        if self.on_event is not None:
            self.on_event(ev)

    def of(self, kind: type[E], leg_id: str | None = None) -> list[E]:
        with self._cv:
            return [e for e in self.items if isinstance(e, kind) and (leg_id is None or e.leg_id == leg_id)]

    def wait(self, kind: type[E], leg_id: str | None = None, timeout: float = 30.0, count: int = 1) -> E:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                got = [e for e in self.items if isinstance(e, kind) and (leg_id is None or e.leg_id == leg_id)]
                if len(got) >= count:
                    return got[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind.__name__} (x{count}) within {timeout} s; events: {self.items}")
                self._cv.wait(left)


class RecPort:
    """FramePort that records what it receives and plays queued samples (then silence)."""

    def __init__(self, play: Samples | None = None) -> None:
        self.frames: list[AudioFrame] = []
        self._play = play if play is not None else np.zeros(0, dtype=np.int16)
        self._pos = 0
        self.pulled: list[int] = []

    def push_rx(self, frame: AudioFrame) -> None:
        self.frames.append(frame)

    def pull_tx(self, pts: int) -> Samples:
        self.pulled.append(pts)
        chunk = self._play[self._pos:self._pos + FRAME_SAMPLES]
        self._pos += FRAME_SAMPLES
        if len(chunk) < FRAME_SAMPLES:
            chunk = np.concatenate([chunk, np.zeros(FRAME_SAMPLES - len(chunk), dtype=np.int16)])
        return chunk

    @property
    def tx_active(self) -> bool:
        return self._pos < len(self._play)

    def audio(self) -> Samples:
        if not self.frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate([f.samples for f in list(self.frames)])


@dataclass
class Answerer:
    """Sink helper: answers every IncomingCall with a new RecPort (or rejects with ``reject``)."""

    line: Any
    events: Events
    play: Samples | None = None
    answer: bool = True
    ports: dict[str, RecPort] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.events.on_event = self._on

    def _on(self, ev: LineEvent) -> None:
        if isinstance(ev, IncomingCall) and self.answer:
            port = RecPort(self.play)
            self.ports[ev.leg_id] = port
            self.line.answer(ev.leg_id, port)


@contextlib.contextmanager
def started_line(**config: Any) -> Iterator[tuple[Any, Events]]:
    from drivers.sip.config import SipTrunkConfig
    from drivers.sip.line import SipLine

    config.setdefault("name", "trunk")
    config.setdefault("port", 0)
    config.setdefault("allowed_peers", ("127.0.0.1",))
    line = SipLine(SipTrunkConfig(**config))
    events = Events()
    line.start(events)
    try:
        yield line, events
    finally:
        line.stop()


# ------------------------------------------------------------------ SIPp
@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    errors: str


def sipp_dir(tmp_path: Path) -> Path:
    """A working directory where SIPp's built-in uac_pcap finds ``pcap/g711a.pcap`` and the DTMF captures."""
    d = tmp_path / "sipp"
    (d / "pcap").mkdir(parents=True, exist_ok=True)
    for p in SIPP_PCAP_DIR.glob("*.pcap"):
        link = d / "pcap" / p.name
        if not link.exists():
            link.symlink_to(p)
    return d


def run_sipp(cwd: Path, target: str, *args: str, calls: int = 1, timeout: float = 60.0, transport: str = "u1",
             local_port: int = 0, limit: int = 0, rate: int = 0) -> SippResult:
    proc, err = start_sipp(cwd, target, *args, calls=calls, timeout=timeout, transport=transport,
                           local_port=local_port, limit=limit, rate=rate)
    return finish_sipp(proc, err, timeout)


def start_sipp(cwd: Path, target: str, *args: str, calls: int = 1, timeout: float = 60.0, transport: str = "u1",
               local_port: int = 0, limit: int = 0, rate: int = 0) -> tuple[subprocess.Popen[str], Path]:
    """Start SIPp (as UAC towards ``target``, or as UAS when ``target`` is "") without waiting for it.

    ``calls`` calls in all, at most ``limit`` at once (default: all of them), ``rate`` new calls per second
    (default: ``calls``)."""
    need("sipp")
    local = local_port or free_port(socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM)
    err = cwd / f"sipp-{local}-errors.log"
    cmd = ["sipp", *([target] if target else []), "-i", "127.0.0.1", "-p", str(local),
           "-mp", str(free_port_block(8)), "-t", transport,
           "-m", str(calls), "-l", str(limit or calls), "-r", str(rate or max(calls, 1)), "-nostdin",
           "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err", "-error_file", str(err), *args]
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    return proc, err


def finish_sipp(proc: subprocess.Popen[str], err: Path | None = None, timeout: float = 60.0) -> SippResult:
    try:
        out, errout = proc.communicate(timeout=timeout + 15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, errout = proc.communicate()
    errors = err.read_text(errors="replace") if err is not None and err.exists() else ""
    return SippResult(proc.returncode, out, errout, errors)


def write_scenario(cwd: Path, name: str, body: str) -> Path:
    path = cwd / f"{name}.xml"
    path.write_text('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
                    f'<scenario name="{name}">\n{body}\n</scenario>\n')
    return path


# ------------------------------------------------------------------ audio references and checks
def pcap_rtp_audio(path: Path) -> Samples:
    """Decode the G.711 A-law RTP (payload type 8) of a classic pcap, placed by RTP timestamp."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data, 0)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    pos = 24
    chunks: list[tuple[int, bytes]] = []
    while pos + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from(endian + "IIII", data, pos)
        pkt = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        off = 14 if linktype == 1 else 16 if linktype == 113 else 0
        if linktype == 1 and struct.unpack_from(">H", pkt, 12)[0] != 0x0800:
            continue
        ihl = (pkt[off] & 0x0F) * 4
        if pkt[off + 9] != 17:
            continue
        rtp = pkt[off + ihl + 8:]
        if len(rtp) < 12 or rtp[1] & 0x7F != 8:
            continue
        cc = rtp[0] & 0x0F
        ts = struct.unpack_from(">I", rtp, 4)[0]
        chunks.append((ts, rtp[12 + 4 * cc:]))
    if not chunks:
        raise ValueError(f"no PCMA RTP in {path}")
    t0 = chunks[0][0]
    end = max(ts - t0 + len(p) for ts, p in chunks)
    out = np.zeros(end, dtype=np.int16)
    for ts, payload in chunks:
        out[ts - t0:ts - t0 + len(payload)] = g711.alaw_decode(payload)
    return out


def best_alignment(reference: Samples, recording: Samples, max_lag: int) -> tuple[float, int]:
    """Normalised correlation of ``reference`` with ``recording`` at the best lag in [0, max_lag].

    The lag is where the reference starts in the recording (the expected delay search).
    """
    ref = reference.astype(np.float64)
    rec = recording.astype(np.float64)
    n = len(ref)
    if len(rec) < n + max_lag:  # a recording cut short still aligns (its end compares with silence)
        rec = np.concatenate([rec, np.zeros(n + max_lag - len(rec))])
    size = 1 << int(np.ceil(np.log2(len(rec) + n)))
    xc = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = np.arange(0, min(max_lag, len(rec) - n) + 1)
    lag = int(lags[np.argmax(xc[lags])])
    seg = rec[lag:lag + n]
    denom = np.sqrt(np.sum(ref * ref) * np.sum(seg * seg))
    return (float(np.sum(ref * seg) / denom) if denom > 0 else 0.0), lag


@dataclass(frozen=True)
class Match:
    """How a recording matches a reference: the global alignment, then 0.25 s segments each re-aligned
    within ±3 frames of the previous one (a jitter buffer that conceals or drops a frame moves the rest of
    the audio; the segment holding that frame correlates less, the others stay near 1)."""

    corr: float  # whole-signal normalised correlation at the best lag
    lag: int
    segments: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(np.median(self.segments))

    def bad(self, threshold: float = 0.9) -> int:
        return sum(c <= threshold for c in self.segments)

    def good(self, threshold: float = 0.98) -> bool:
        """The audio is there, in order: median segment above ``threshold`` and at least three quarters of
        the segments intact. A few segments may be broken by frame slips: on a loaded machine the receiving
        jitter buffer conceals or drops a frame now and then. Slip-free recordings are a bound of
        ``gatewayd bench sip``, not of these functional tests; a broken path (silence, noise, the wrong
        direction, garbled audio) fails here with a median far below 0.9."""
        return (len(self.segments) >= 4 and self.median > threshold
                and self.bad() <= len(self.segments) // 4)


def match(reference: Samples, recording: Samples, max_lag: int, segment: int = 2000, slip: int = 480) -> Match:
    corr, lag = best_alignment(reference, recording, max_lag)
    rec = recording.astype(np.float64)
    out = []
    at_lag = lag
    for start in range(0, len(reference) - segment + 1, segment):
        ref = reference[start:start + segment].astype(np.float64)
        if np.sqrt(np.mean(ref * ref)) < 30:  # silent stretch: nothing to compare
            continue
        lo = max(0, at_lag + start - slip)
        win = rec[lo:at_lag + start + segment + slip]
        if len(win) < segment:
            break  # the recording ended (the far end hung up): compare what was recorded
        dots = np.correlate(win, ref, mode="valid")
        energy = np.convolve(win * win, np.ones(segment), mode="valid")
        den = np.sqrt(energy * float(np.dot(ref, ref)))
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(den > 0, dots / den, 0.0)
        k = int(np.argmax(c))
        out.append(float(c[k]))
        if c[k] > 0.95:
            at_lag = lo + k - start
    return Match(corr, lag, tuple(out))


def chirp(seconds: float, f0: float = 300.0, f1: float = 3000.0, level: float = 8000.0, rate: int = 8000) -> Samples:
    """A linear sweep: its autocorrelation has one sharp peak, so the delay search is unambiguous."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return (level * np.sin(phase)).astype(np.int16)


def noise(seconds: float, seed: int, level: float = 6000.0, rate: int = 8000) -> Samples:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * rate)) * level / 3
    return np.clip(x, -32768, 32767).astype(np.int16)


def speechlike(seconds: float, seed: int) -> Samples:
    """Broadband noise under a 4 Hz envelope: one sharp correlation peak, with speech-like pauses."""
    x = noise(seconds, seed).astype(np.float64)
    t = np.arange(len(x)) / 8000
    return (x * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))).astype(np.int16)


# ------------------------------------------------------------------ baresip
class Baresip:
    """A baresip user agent with a private config directory: plays ``wav`` (aufile) as its microphone
    and dumps what it receives with the sndfile module."""

    def __init__(self, workdir: Path, wav: Path, answer: bool = True) -> None:
        need("baresip")
        self.dir = workdir
        self.cfg = workdir / "cfg"
        self.rec = workdir / "rec"
        self.cfg.mkdir(parents=True, exist_ok=True)
        self.rec.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        rtp = free_port_block(16)
        (self.cfg / "config").write_text(
            "poll_method\t\tepoll\n"
            f"sip_listen\t\t127.0.0.1:{self.port}\n"
            "net_interface\t\t127.0.0.1\n"
            f"rtp_ports\t\t{rtp}-{rtp + 15}\n"
            "call_max_calls\t\t4\n"
            "audio_player\t\taubridge,nil\n"
            f"audio_source\t\taufile,{wav}\n"
            "audio_alert\t\taubridge,nil\n"
            "audio_srate\t\t8000\n"
            "audio_channels\t\t1\n"
            f"module_path\t\t{BARESIP_MODULES}\n"
            "module\t\t\tstdio.so\n"
            "module\t\t\tg711.so\n"
            "module\t\t\taufile.so\n"
            "module\t\t\taubridge.so\n"
            "module\t\t\tsndfile.so\n"
            "module_app\t\taccount.so\n"
            "module_app\t\tmenu.so\n"
            f"snd_path\t\t{self.rec}\n"
        )
        mode = "auto" if answer else "manual"
        (self.cfg / "accounts").write_text(f"<sip:bs@127.0.0.1>;regint=0;answermode={mode};audio_codecs=PCMU,PCMA\n")
        self.log = workdir / "baresip.log"
        self._logf = self.log.open("w")
        self.proc = subprocess.Popen(["baresip", "-f", str(self.cfg)], stdin=subprocess.PIPE,
                                     stdout=self._logf, stderr=subprocess.STDOUT, cwd=workdir)
        self.wait_log("baresip is ready", 15)

    @property
    def uri(self) -> str:
        return f"sip:bs@127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.output().count(text) < count:
            if self.proc.poll() is not None:
                raise AssertionError(f"baresip exited ({self.proc.returncode}):\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"baresip did not log {text!r} within {timeout} s:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def send(self, keys: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(keys.encode())
        self.proc.stdin.flush()

    def dial(self, uri: str) -> None:
        self.send(f"d{uri}\n")

    def received_wav(self) -> Path:
        """The sndfile dump of decoded (received) audio of the last call."""
        files = sorted(self.rec.glob("dump-*-dec.wav"), key=os.path.getmtime)
        if not files:
            raise AssertionError(f"baresip recorded nothing in {self.rec}")
        return files[-1]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.send("q")
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._logf.close()

