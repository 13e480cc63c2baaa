"""ModemLine (threads, pyserial) against the emulated modem on a real pty, in real time.

Timing only decides how long we wait (generous timeouts); every assertion is exact: samples after
the codec round trip, digits, reasons, and pts (inside a +VRX stretch the modem's byte stream is the
clock, so line samples map to pts exactly whatever the scheduling).
"""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.emulators.modem import CallerId, FakeV253Modem, encode, line_roundtrip
from drivers.line import (
    CallerIdReceived,
    DigitReceived,
    IncomingCall,
    LineError,
    LineEvent,
    LineStatus,
    RemoteHangup,
    SilencePort,
)
from drivers.modem.config import ModemConfig
from drivers.modem.driver import ModemLine
from drivers.modem.engine import State
from media.frame import Samples

pytestmark = pytest.mark.timeout(120)


class Runtime:
    """The daemon's side: collects events, answers every offered call with a fresh port."""

    def __init__(self, answer: bool = True) -> None:
        self.events: list[LineEvent] = []
        self.ports: dict[str, SilencePort] = {}
        self.line: ModemLine | None = None
        self.answer = answer
        self.cv = threading.Condition()

    def sink(self, ev: LineEvent) -> None:
        with self.cv:
            self.events.append(ev)
            self.cv.notify_all()
        if isinstance(ev, IncomingCall) and self.answer and self.line is not None:
            port = SilencePort()
            self.ports[ev.leg_id] = port
            self.line.answer(ev.leg_id, port)

    def of(self, kind: type[LineEvent]) -> list[LineEvent]:
        with self.cv:
            return [e for e in self.events if isinstance(e, kind)]

    def wait(self, pred: Callable[[], bool], timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        with self.cv:
            while not pred():
                left = end - time.monotonic()
                assert left > 0, f"timed out; events so far: {self.events}"
                self.cv.wait(min(left, 0.05))


def audio(n: int, seed: int) -> Samples:
    x = np.random.default_rng(seed).integers(-20000, 20000, n).astype(np.int16)
    x[0] = 15000
    x[5::97] = -28672  # 0x10 in 8-bit unsigned: shielded on the wire
    x[9::101] = -28416  # 0x11 (XON) in 8-bit unsigned
    x[11::103] = -27904  # 0x13 (XOFF)
    return x


def rx(port: SilencePort) -> Samples:
    frames = list(port.received)
    assert [f.pts for f in frames] == list(range(0, 160 * len(frames), 160))
    return np.concatenate([f.samples for f in frames])


def wait_samples(port: SilencePort, n: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while len(port.received) * 160 < n:
        assert time.monotonic() < end, "audio did not arrive"
        time.sleep(0.01)


def first_loud(x: Samples, start: int) -> int:
    return start + int(np.flatnonzero(np.abs(x[start:].astype(np.int32)) > 1000)[0])


@pytest.fixture
def modem(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeV253Modem]:
    profile = getattr(request, "param", "usr5637")
    emu = FakeV253Modem(profile, link=tmp_path / "ttyMODEM", ring_on_s=0.3, ring_off_s=0.5)
    emu.start()
    yield emu
    emu.stop()


def make_line(emu: FakeV253Modem, rt: Runtime, **kw: object) -> ModemLine:
    cfg = ModemConfig(device=emu.path, name="line1", number="5550000", ring_timeout_s=3.0, cid_settle_s=0.2,
                      reopen_backoff_s=(0.1, 0.5), **kw)  # type: ignore[arg-type]
    line = ModemLine(cfg)
    rt.line = line
    return line


@pytest.mark.parametrize("modem", ["usr5637", "cx93010"], indirect=True)
def test_whole_call_over_a_pty(modem: FakeV253Modem) -> None:
    rt = Runtime()
    line = make_line(modem, rt)
    line.start(rt.sink)
    try:
        assert rt.of(LineStatus)[0].state == "up"  # type: ignore[attr-defined]
        assert line.modem_lines_available is False  # a pty has no DTR: errno 25 tolerated
        fmt = modem.device.codec
        assert fmt is not None
        # ring → caller ID → answer at ring 2
        modem.ring(CallerId(number="5551234", name="DOE JOHN"), rings=8)
        rt.wait(lambda: bool(rt.of(IncomingCall)))
        call = rt.of(IncomingCall)[0]
        assert (call.caller, call.caller_name, call.called) == ("5551234", "DOE JOHN", "5550000")  # type: ignore[attr-defined]
        assert modem.wait_until(lambda d: d.mode == "vrx", 10.0)
        assert modem.device.rings_at_off_hook == 2 and modem.device.ata_count == 0
        assert rt.of(CallerIdReceived)[0].caller == "5551234"  # type: ignore[attr-defined]
        port = rt.ports[call.leg_id]
        # the caller's audio arrives, sample for sample after the codec round trip
        speech = audio(8000, 1)
        assert {0x10, 0x11, 0x13} <= set(encode(fmt, speech))  # DLE, XON, XOFF bytes all in the audio
        with modem.lock:
            start_pts = len(port.received) * 160
            line_at = modem.device.play(speech)
        wait_samples(port, start_pts + 8000 + 4000)
        got = rx(port)
        at = first_loud(got, start_pts)
        assert np.array_equal(got[at:at + 8000], line_roundtrip(fmt, speech))
        # a prompt is played; the modem recorded exactly it
        prompt = audio(4000, 2)
        port.queue_tx(prompt)
        assert modem.wait_until(lambda d: d.vtx_count == 1 and d.mode == "vrx", 10.0)
        assert np.array_equal(modem.transmitted(), line_roundtrip(fmt, prompt))
        # digits, once each, at the pts of the key press
        with modem.lock:
            mark_pts = len(port.received) * 160
            mark_line = modem.device.play(audio(800, 3))
        wait_samples(port, mark_pts + 800 + 1600)
        off = first_loud(rx(port), mark_pts) - mark_line
        first = modem.send_dtmf("4*7")
        rt.wait(lambda: len(rt.of(DigitReceived)) == 3)
        time.sleep(0.3)
        digits = rt.of(DigitReceived)
        assert [d.digit for d in digits] == ["4", "*", "7"]  # type: ignore[attr-defined]
        assert [d.start_pts for d in digits] == [first + off, first + 1600 + off, first + 3200 + off]  # type: ignore[attr-defined]
        # the caller hangs up (loop-current drop): the call ends, the recording is cut there
        h = modem.hang_up("cpc")
        rt.wait(lambda: bool(rt.of(RemoteHangup)))
        assert rt.of(RemoteHangup) == [RemoteHangup("line1", call.leg_id, reason="cpc", tail_start_pts=h + off)]
        assert port.received[-1].end_pts <= h + off
        assert modem.wait_until(lambda d: not d.off_hook and "ATH" in d.commands, 10.0)
        assert line_at >= 0
    finally:
        line.stop()
    assert line.state is State.READY


def test_garbage_then_vanish_and_reappear(modem: FakeV253Modem) -> None:
    rt = Runtime()
    line = make_line(modem, rt)
    line.start(rt.sink)
    try:
        rng = np.random.default_rng(5)
        modem.garbage(rng.integers(0, 256, 2000).astype(np.uint8).tobytes() + b"\r\n")  # noise while idle
        modem.ring(CallerId(number="5551234"), rings=8)
        rt.wait(lambda: bool(rt.of(IncomingCall)))
        assert modem.wait_until(lambda d: d.mode == "vrx", 10.0)
        junk = rng.integers(0, 256, 3000).astype(np.uint8)
        junk[junk == 0x10] = 0x11  # corrupted audio bytes (a stray DLE would be a real event) ...
        modem.garbage(junk.tobytes() + b"\x10%\x10Z\x10\x00")  # ... and DLE codes nobody defined
        time.sleep(0.3)
        leg = rt.of(IncomingCall)[0].leg_id
        modem.vanish()  # USB stick pulled mid-call
        rt.wait(lambda: bool(rt.of(RemoteHangup)))
        assert rt.of(RemoteHangup)[0].reason == "device-lost" and rt.of(RemoteHangup)[0].leg_id == leg  # type: ignore[attr-defined]
        rt.wait(lambda: [e.state for e in rt.of(LineStatus)][-1] == "down")  # type: ignore[attr-defined]
        time.sleep(1.0)  # a few re-open attempts fail meanwhile
        modem.reappear()  # re-enumerated: a new pty behind the same symlink
        rt.wait(lambda: [e.state for e in rt.of(LineStatus)][-2:] == ["recovering", "up"])  # type: ignore[attr-defined]
        assert modem.device.fclass == 8 and modem.device.vcid == 1  # re-initialised from power-up
        # and it takes the next call
        modem.ring(CallerId(number="5559876"), rings=8)
        rt.wait(lambda: len(rt.of(IncomingCall)) == 2)
        assert rt.of(IncomingCall)[1].caller == "5559876"  # type: ignore[attr-defined]
        assert modem.wait_until(lambda d: d.mode == "vrx", 10.0)
        modem.hang_up("busy")
        rt.wait(lambda: len(rt.of(RemoteHangup)) == 2, timeout=10.0)
        assert rt.of(RemoteHangup)[1].reason == "busy-tone"  # type: ignore[attr-defined]
    finally:
        line.stop()
    assert line.reopens >= 1


def test_start_fails_cleanly_without_a_device(tmp_path: Path) -> None:
    line = ModemLine(ModemConfig(device=str(tmp_path / "no-such-tty")))
    with pytest.raises(LineError, match="cannot open"):
        line.start(lambda ev: None)


def test_start_fails_cleanly_when_nothing_answers() -> None:
    master, slave = os.openpty()  # a port with no modem behind it
    tty.setraw(slave)
    try:
        line = ModemLine(ModemConfig(device=os.ttyname(slave), start_timeout_s=6.0, command_timeout_s=0.5))
        with pytest.raises(LineError, match="did not initialise"):
            line.start(lambda ev: None)
        # it tried: AT three times, with the voice-state exits after the first
        os.set_blocking(master, False)
        sent = os.read(master, 4096)
        assert sent.count(b"AT\r") == 3 and b"\x10\x10\x10!" in sent
    finally:
        os.close(master)
        os.close(slave)
