"""hil/backends/tle_a.py: the TLE-A codec (sans-IO) and its serial shell on a real pty."""

from __future__ import annotations

import os
import select
import time
import tty
from collections.abc import Iterator

import pytest

from hil.backends.tle_a import TleA, TleCodec, TleError, TleLineState, TleMessage

pytest.importorskip("serial", reason="pyserial drives the TLE-A")


def test_the_documented_example_command_is_encoded_byte_for_byte() -> None:
    assert TleCodec().command("send_tone", 16, 1) == b":0,13,16,1\r"  # TC_SENDTONE, TP_BUSY, TP_LINE1
    assert TleCodec(unit=2, commands={"ring": 21}).command("ring", 1, 3) == b":2,21,1,3\r"
    assert TleCodec(commands={"send_tone": 99}).command("send_tone") == b":0,99\r"  # the rig file overrides
    assert TleCodec().command(7, 1) == b":0,7,1\r"


def test_a_command_without_a_number_names_the_rig_key() -> None:
    with pytest.raises(TleError, match=r"tle_a\.commands.*known: send_tone"):
        TleCodec().command("ring", 1)
    with pytest.raises(TleError, match="non-negative"):
        TleCodec().command("send_tone", -1)


def test_messages_are_parsed_across_any_chunking_and_garbage_is_skipped() -> None:
    wire = b"!0,1,0,1\r\n\x00\xffjunk\r\n!0,1,7,1\r\n!0,2,84,1,35\r\n!0,x,1\r\n!0,1,1,1\r\n"
    whole = TleCodec().feed(wire)
    codec = TleCodec()
    chunked: list[TleMessage] = []
    for i in range(len(wire)):
        chunked += codec.feed(wire[i:i + 1])
    assert chunked == whole
    assert [(m.name, m.params) for m in whole] == [("off-hook", (1,)), ("ring", (1,)), ("signal-level", (1, 35)),
                                                  ("on-hook", (1,))]
    assert codec.garbage == 2
    assert whole[2].kind == 2 and whole[2].raw == "!0,2,84,1,35"


def test_an_endless_line_is_dropped_not_buffered_forever() -> None:
    codec = TleCodec()
    assert codec.feed(b"x" * 1000) == []
    assert codec.garbage == 1
    assert codec.feed(b"!0,1,0\r\n") == [TleMessage(0, 1, 0, (), "!0,1,0")]


def test_line_state_follows_the_messages() -> None:
    st = TleLineState()
    codec = TleCodec()
    for m in codec.feed(b"!0,1,7,2\r\n!0,1,7,2\r\n!0,1,0,2\r\n!0,1,64,2\r\n!0,1,1,2\r\n!0,1,0\r\n"):
        st.apply(m)
    assert st.rings == {2: 2} and st.flashes == {2: 1}
    assert st.off_hook == {2: False, 1: True}


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    try:
        yield master, path
    finally:
        os.close(master)
        os.close(slave)


def _read_until(fd: int, end: bytes, timeout: float = 5.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(end):
        left = deadline - time.monotonic()
        assert left > 0, f"only {buf!r} arrived"
        if select.select([fd], [], [], left)[0]:
            buf += os.read(fd, 256)
    return buf


def test_the_serial_shell_on_a_pty(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    seen: list[TleMessage] = []
    with TleA(path, 9600, unit=0, commands={"ring": 21}, on_message=seen.append) as unit:
        unit.send_tone("busy", line=1)
        assert _read_until(master, b"\r") == b":0,13,16,1\r"
        unit.send("ring", 1, 4)
        assert _read_until(master, b"\r") == b":0,21,1,4\r"
        os.write(master, b"!0,1,7,1\r\n!0,1,")  # a ring, then half a message
        assert unit.wait_for("ring", 5).params == (1,)
        os.write(master, b"0,1\r\n")
        assert unit.wait_for("off-hook", 5).number == 0
        assert unit.state.off_hook == {1: True} and unit.state.rings == {1: 1}
        with pytest.raises(TleError, match="no on-hook"):
            unit.wait_for("on-hook", 0.2)
        with pytest.raises(TleError, match="no TP_ code"):
            unit.send_tone("reorder")
    assert [m.name for m in seen] == ["ring", "off-hook"]
