"""The FXO board emulator on its own: what goes over the real pty, byte for byte, and its line clock."""

from __future__ import annotations

import itertools
import os
import select
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from drivers.emulators.fxo import BoardQuirks, EmulatorError, FxoEmulator


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[FxoEmulator]:
    e = FxoEmulator(tmp_path, quirks=BoardQuirks(clock_start_ms=1000)).start()
    yield e
    e.stop()


class Host:
    """A bare pyserial host on the emulator's tty."""

    def __init__(self, path: Path) -> None:
        self.port = serial.serial_for_url(str(path), baudrate=115200, timeout=0.05)
        self.buf = b""

    def lines(self, n: int, timeout: float = 5.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while self.buf.count(b"\n") < n and time.monotonic() < deadline:
            self.buf += self.port.read(256)
        out = self.buf.split(b"\n")
        got, self.buf = [line + b"\n" for line in out[:n]], b"\n".join(out[n:])
        return got

    def close(self) -> None:
        self.port.close()


def test_power_up_hello_and_command_replies_exact_bytes(emu: FxoEmulator) -> None:
    host = Host(emu.serial_path)
    try:
        assert emu.event_times("HELLO") == [0]  # the power-up HELLO was sent before the host opened the port
        host.port.write(b"HELLO*42\r\n")  # (and pyserial's open() flushed it)
        assert host.lines(1) == [b"HELLO FXO/1 fw=1.0.0 board=emulator*6E\r\n"]
        host.port.write(b"HOOK OFF*00\r\nWHAT*0A\r\n" + b"x" * 100 + b"\r\n")
        assert host.lines(3) == [b"ERR CSUM*6D\r\n", b"ERR UNKNOWN*2D\r\n", b"ERR LONG*6F\r\n"]
        assert not emu.off_hook
        host.port.write(b"HOOK OFF*6C\r\n")
        ok, loop = host.lines(2)
        assert ok == b"OK HOOK OFF*48\r\n"
        assert loop.startswith(b"LOOP 1 @")  # 40 ms later, on the board's clock
        assert emu.off_hook and emu.stats.bad_commands == 3
        host.port.write(b"STATUS*14\r\n")
        status = host.lines(1)[0]
        assert status.startswith(b"STATUS HOOK=OFF LOOP=1 POL=+ RING=0 @")
        host.port.write(b"HOOK ON*22\r\n")
        assert host.lines(2)[0] == b"OK HOOK ON*06\r\n"
    finally:
        host.close()


def test_ring_edges_follow_the_cadence_on_the_board_clock(emu: FxoEmulator) -> None:
    host = Host(emu.serial_path)
    try:
        emu.ring(rings=2, cadence=(0.4, 0.2, 0.4, 1.0))
        lines = host.lines(8, timeout=10)
        stamps = [int(line.split(b"@")[1].split(b"*")[0]) for line in lines]
        assert [line.split(b" @")[0] for line in lines] == [b"RING 1", b"RING 0"] * 4
        assert [b - a for a, b in itertools.pairwise(stamps)] == [400, 200, 400, 1000, 400, 200, 400]
        assert emu.wait_event("caller gave up", 5)
    finally:
        host.close()


def test_off_hook_trips_the_ringing(emu: FxoEmulator) -> None:
    host = Host(emu.serial_path)
    try:
        emu.ring(rings=5, cadence=(1.0, 1.0))
        assert host.lines(1, timeout=5)[0].startswith(b"RING 1 @")
        host.port.write(b"HOOK OFF*6C\r\n")
        assert [line.split(b" @")[0] for line in host.lines(3)] == [b"RING 0", b"OK HOOK OFF*48\r\n", b"LOOP 1"]
        time.sleep(2.5)
        assert host.port.read(256) == b""  # no more rings
        assert emu.event_times("RING 1") == emu.event_times("RING 1")[:1]
    finally:
        host.close()


def test_line_clock_paces_the_capture_fifo(emu: FxoEmulator) -> None:
    fd = os.open(emu.alsa.capture_fifo, os.O_RDONLY)  # what ALSA's file plugin does
    try:
        t0 = time.monotonic()
        got = 0
        while got < 2 * 8000 * 2:  # two seconds of S16_LE
            select.select([fd], [], [], 1.0)
            got += len(os.read(fd, 65536))
        elapsed = time.monotonic() - t0
        assert 1.9 <= elapsed <= 3.5, elapsed  # paced, not as fast as it is read
    finally:
        os.close(fd)
    assert emu.stats.capture_opens == 1


def test_vanish_and_reappear_keep_the_path(emu: FxoEmulator) -> None:
    host = Host(emu.serial_path)
    emu.vanish()
    assert not emu.serial_path.exists()
    with pytest.raises(serial.SerialException):
        for _ in range(3):
            host.port.read(10)
            host.port.write(b"STATUS*14\r\n")
    host.close()
    emu.reappear()
    host = Host(emu.serial_path)
    try:
        host.port.write(b"HELLO*42\r\n")
        assert host.lines(1) == [b"HELLO FXO/1 fw=1.0.0 board=emulator*6E\r\n"]
    finally:
        host.close()


def test_caller_id_needs_a_renderer(tmp_path: Path) -> None:
    from drivers.emulators.fxo import CallerId
    with FxoEmulator(tmp_path, cid_renderer=None) as emu, pytest.raises(EmulatorError, match="cid_renderer"):
        emu.ring(CallerId(number="5551234"))


def test_hang_up_needs_an_answered_call(emu: FxoEmulator) -> None:
    with pytest.raises(EmulatorError, match="not off-hook"):
        emu.hang_up("cpc")
