"""FXO/1 control protocol: exact bytes both ways, strict parsing, garbage counted."""

import pytest

from drivers.fxo.protocol import (
    MAX_LINE,
    Ack,
    Command,
    CommandDecoder,
    Error,
    Garbage,
    Hello,
    Loop,
    MessageDecoder,
    Polarity,
    Ring,
    Status,
    encode_command,
    encode_message,
    frame,
)


def test_commands_exact_bytes() -> None:
    assert encode_command(Command.HELLO) == b"HELLO*42\r\n"
    assert encode_command(Command.HOOK_OFF) == b"HOOK OFF*6C\r\n"
    assert encode_command(Command.HOOK_ON) == b"HOOK ON*22\r\n"
    assert encode_command(Command.STATUS) == b"STATUS*14\r\n"


def test_board_messages_exact_bytes() -> None:
    assert encode_message(Ack(Command.HOOK_OFF)) == b"OK HOOK OFF*48\r\n"
    assert encode_message(Ack(Command.HOOK_ON)) == b"OK HOOK ON*06\r\n"
    assert encode_message(Ring(True, 1000)) == b"RING 1 @1000*62\r\n"
    assert encode_message(Ring(False, 3000)) == b"RING 0 @3000*61\r\n"
    assert encode_message(Loop(False, 2**32 - 1)) == b"LOOP 0 @4294967295*61\r\n"
    assert encode_message(Loop(False, 2**32 + 5)) == b"LOOP 0 @5*59\r\n"  # the board clock wraps
    assert encode_message(Polarity(False, 12)) == b"POL - @12*3D\r\n"
    assert encode_message(Hello("FXO/1", "1.2.0", {"board": "daa-rp2040"})) == \
        b"HELLO FXO/1 fw=1.2.0 board=daa-rp2040*38\r\n"
    assert encode_message(Error("CSUM")) == b"ERR CSUM*6D\r\n"
    assert encode_message(Error("STATE", "relay fault")) == b"ERR STATE relay fault*3B\r\n"
    assert encode_message(Status(True, True, True, False, 77)) == b"STATUS HOOK=OFF LOOP=1 POL=+ RING=0 @77*4F\r\n"


def test_decoder_round_trip_and_any_chunking() -> None:
    msgs = [Hello("FXO/1", "1.2.0", {"board": "daa-rp2040"}), Ack(Command.HOOK_OFF), Ring(True, 1000),
            Ring(False, 3000), Loop(True, 5), Polarity(True, 6), Polarity(False, 7),
            Status(False, False, False, True, 8), Error("STATE", "relay fault"), Error("CSUM")]
    wire = b"".join(encode_message(m) for m in msgs)
    for step in (1, 2, 3, 7, len(wire)):
        dec = MessageDecoder()
        out = []
        for i in range(0, len(wire), step):
            out += dec.feed(wire[i:i + step])
        assert out == msgs
        assert dec.garbage == 0


def test_bare_lf_and_blank_lines_are_fine() -> None:
    dec = MessageDecoder()
    assert dec.feed(b"\r\n\n\rRING 1 @1000*62\n\n") == [Ring(True, 1000)]
    assert dec.garbage == 0


@pytest.mark.parametrize(("raw", "reason"), [
    (b"RING 1 @1000*63\r\n", "checksum mismatch"),
    (b"RING 1 @1000\r\n", "no checksum"),
    (b"RING 1 @1000*6\r\n", "no checksum"),
    (b"RING 1 @1000*6g\r\n", "malformed checksum"),
    (b"RING \xff1 @1000*62\r\n", "non-ASCII byte"),
    (b"RING 1 @1000\x00*62\r\n", "non-ASCII byte"),
    (b"A" * (MAX_LINE + 5) + b"\r\n", "line too long"),
])
def test_garbage_lines_are_counted_and_dropped(raw: bytes, reason: str) -> None:
    dec = MessageDecoder()
    out = dec.feed(raw + encode_message(Ring(False, 5)))
    assert len(out) == 2
    assert isinstance(out[0], Garbage) and out[0].reason == reason
    assert out[1] == Ring(False, 5)  # the next good line survives
    assert dec.garbage == 1


@pytest.mark.parametrize("body", [
    "RING 2 @1000", "RING 1 1000", "RING 1  @1000", "ring 1 @1000", "RING 1 @", "RING 1 @99999999999",
    "LOOP x @1", "POL 0 @1", "OK HOOK SIDEWAYS", "OK", "HELLO FXO/1", "STATUS HOOK=ON LOOP=1", "WHAT",
    "RING 1 @4294967296",
])
def test_strict_parsing_rejects_near_misses(body: str) -> None:
    dec = MessageDecoder()
    out = dec.feed(frame(body))
    assert len(out) == 1 and isinstance(out[0], Garbage), out
    assert dec.garbage == 1


def test_overlong_line_does_not_swallow_the_next() -> None:
    dec = MessageDecoder()
    out = dec.feed(b"x" * 500 + b"\nLOOP 1 @3*5E\r\n")
    assert [type(o) for o in out] == [Garbage, Loop]


def test_frame_refuses_bodies_that_would_not_parse() -> None:
    for bad in ["", "A*B", "tab\there", "x" * MAX_LINE]:
        with pytest.raises(ValueError):
            frame(bad)


def test_board_side_command_decoder() -> None:
    dec = CommandDecoder()
    wire = (encode_command(Command.HELLO) + b"HOOK OFF*00\r\n" + b"HOOK OFF\r\n" + frame("HOOK UP")
            + b"Z" * 200 + b"\n" + encode_command(Command.HOOK_ON))
    assert dec.feed(wire) == [Command.HELLO, Error("CSUM"), Error("CSUM"), Error("UNKNOWN"), Error("LONG"),
                              Command.HOOK_ON]


def test_the_readme_example_is_valid_fxo1() -> None:
    """Every line of the specification's example transcript decodes (the doc and the code agree)."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "drivers" / "fxo" / "README.md").read_text()
    example = text.split("### Example", 1)[1].split("```")[1]
    board = re.findall(r"board (\S+(?: \S+)*?\*[0-9A-F]{2})", example)
    host = re.findall(r"host  (\S+(?: \S+)*?\*[0-9A-F]{2})", example)
    assert len(board) == 10 and len(host) == 4
    dec = MessageDecoder()
    out = dec.feed(b"".join(line.encode() + b"\r\n" for line in board))
    assert dec.garbage == 0 and len(out) == 10
    cmds = CommandDecoder().feed(b"".join(line.encode() + b"\r\n" for line in host))
    assert cmds == [Command.HELLO, Command.STATUS, Command.HOOK_OFF, Command.HOOK_ON]
