"""The FXO board's serial control protocol ("FXO/1"), sans-IO.

The board is a DAA (hook relay, ring detector, loop-current and line-voltage sense) behind a small
microcontroller on a USB-CDC or UART link. The full specification is in drivers/fxo/README.md, section
"FXO board control protocol (FXO/1)"; in short:

* ASCII lines ``BODY*HH\\r\\n`` where ``HH`` is the XOR of every byte of ``BODY`` as two upper-case hex
  digits (NMEA style). Lines longer than :data:`MAX_LINE` bytes, with a wrong or missing checksum,
  with bytes outside printable ASCII or with an unknown body are garbage: counted and dropped.
* Host → board commands: ``HELLO``, ``HOOK OFF``, ``HOOK ON``, ``STATUS``. Each gets exactly one reply.
* Board → host: replies ``HELLO FXO/1 fw=...``, ``OK HOOK OFF``, ``OK HOOK ON``, ``STATUS ...``,
  ``ERR <code> [text]``; unsolicited ``RING 1|0 @ms``, ``LOOP 1|0 @ms``, ``POL +|- @ms`` and a
  ``HELLO`` at power-up. ``@ms`` is the board's millisecond uptime (wraps at 2**32).

Nothing here does I/O: :class:`MessageDecoder` (host side) and :class:`CommandDecoder` (board side, used
by the emulator) take bytes in any chunking and return parsed items.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

PROTOCOL = "FXO/1"
MAX_LINE = 80  # bytes of BODY*HH, without the line end
BOARD_CLOCK_WRAP = 2**32


class Command(StrEnum):
    HELLO = "HELLO"
    HOOK_OFF = "HOOK OFF"
    HOOK_ON = "HOOK ON"
    STATUS = "STATUS"


class ErrorCode(StrEnum):
    CHECKSUM = "CSUM"  # the command's checksum was wrong or missing
    UNKNOWN = "UNKNOWN"  # not a command
    TOO_LONG = "LONG"  # the command line was longer than MAX_LINE
    STATE = "STATE"  # the board cannot do it now (e.g. relay fault)


# ------------------------------------------------------------------------------------------ messages
@dataclass(frozen=True)
class Hello:
    protocol: str
    firmware: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ack:
    command: Command  # HOOK_OFF or HOOK_ON


@dataclass(frozen=True)
class Error:
    code: str
    text: str = ""


@dataclass(frozen=True)
class Ring:
    on: bool
    board_ms: int


@dataclass(frozen=True)
class Loop:
    present: bool
    board_ms: int


@dataclass(frozen=True)
class Polarity:
    positive: bool
    board_ms: int


@dataclass(frozen=True)
class Status:
    off_hook: bool
    loop: bool
    positive: bool
    ringing: bool
    board_ms: int


@dataclass(frozen=True)
class Garbage:
    """A line (or run of bytes) that was not a valid message; ``raw`` is what was dropped."""

    reason: str
    raw: bytes


Message = Hello | Ack | Error | Ring | Loop | Polarity | Status


# ------------------------------------------------------------------------------------------ framing
def checksum(body: bytes) -> int:
    cs = 0
    for b in body:
        cs ^= b
    return cs


def frame(body: str) -> bytes:
    """``BODY*HH\\r\\n`` for a body of printable ASCII."""
    raw = body.encode("ascii")
    if not raw or any(b < 0x20 or b > 0x7E or b == 0x2A for b in raw):
        raise ValueError(f"not a valid FXO/1 body: {body!r}")
    if len(raw) + 3 > MAX_LINE:
        raise ValueError(f"FXO/1 line too long: {body!r}")
    return raw + b"*%02X\r\n" % checksum(raw)


def encode_command(command: Command) -> bytes:
    return frame(command.value)


def encode_message(msg: Message) -> bytes:
    """Board side (the emulator): the exact bytes for a message."""
    return frame(message_body(msg))


def message_body(msg: Message) -> str:
    if isinstance(msg, Hello):
        extra = "".join(f" {k}={v}" for k, v in msg.fields.items())
        return f"HELLO {msg.protocol} fw={msg.firmware}{extra}"
    if isinstance(msg, Ack):
        return f"OK {msg.command.value}"
    if isinstance(msg, Error):
        return f"ERR {msg.code} {msg.text}" if msg.text else f"ERR {msg.code}"
    if isinstance(msg, Ring):
        return f"RING {int(msg.on)} @{msg.board_ms % BOARD_CLOCK_WRAP}"
    if isinstance(msg, Loop):
        return f"LOOP {int(msg.present)} @{msg.board_ms % BOARD_CLOCK_WRAP}"
    if isinstance(msg, Polarity):
        return f"POL {'+' if msg.positive else '-'} @{msg.board_ms % BOARD_CLOCK_WRAP}"
    return (f"STATUS HOOK={'OFF' if msg.off_hook else 'ON'} LOOP={int(msg.loop)} "
            f"POL={'+' if msg.positive else '-'} RING={int(msg.ringing)} @{msg.board_ms % BOARD_CLOCK_WRAP}")


class LineSplitter:
    """Cuts a byte stream into checksummed bodies; everything else becomes :class:`Garbage`."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overlong = False  # discarding until the next line end

    def feed(self, data: bytes) -> list[bytes | Garbage]:
        out: list[bytes | Garbage] = []
        for b in data:
            if b in (0x0A, 0x0D):
                if self._overlong:
                    out.append(Garbage("line too long", bytes(self._buf)))
                    self._overlong = False
                elif self._buf:
                    out.append(self._check(bytes(self._buf)))
                self._buf.clear()
                continue
            if self._overlong:
                continue
            self._buf.append(b)
            if len(self._buf) > MAX_LINE:
                self._overlong = True  # keep the first MAX_LINE+1 bytes to report
        return out

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)

    @staticmethod
    def _check(line: bytes) -> bytes | Garbage:
        if any(b < 0x20 or b > 0x7E for b in line):
            return Garbage("non-ASCII byte", line)
        star = line.rfind(b"*")
        if star < 0 or len(line) - star != 3:
            return Garbage("no checksum", line)
        body, hexcs = line[:star], line[star + 1:]
        if not re.fullmatch(rb"[0-9A-F]{2}", hexcs):
            return Garbage("malformed checksum", line)
        if int(hexcs, 16) != checksum(body) or not body:
            return Garbage("checksum mismatch", line)
        return body


# ------------------------------------------------------------------------------------------ host side
_MS = r"@(\d{1,10})"
_RE_RING = re.compile(rf"RING ([01]) {_MS}")
_RE_LOOP = re.compile(rf"LOOP ([01]) {_MS}")
_RE_POL = re.compile(rf"POL ([+-]) {_MS}")
_RE_STATUS = re.compile(rf"STATUS HOOK=(ON|OFF) LOOP=([01]) POL=([+-]) RING=([01]) {_MS}")
_RE_HELLO = re.compile(r"HELLO (FXO/\d+) fw=([!-~]+)((?: [A-Za-z0-9_-]+=[!-~]+)*)")
_RE_OK = re.compile(r"OK (HOOK OFF|HOOK ON)")
_RE_ERR = re.compile(r"ERR ([A-Z]+)(?: ([ -~]*))?")


def _ms(text: str) -> int | None:
    v = int(text)
    return v if v < BOARD_CLOCK_WRAP else None


def parse_message(body: bytes) -> Message | Garbage:
    """Parse one checksummed body from the board (strict: exact spelling and spacing)."""
    text = body.decode("ascii")
    if m := _RE_RING.fullmatch(text):
        ms = _ms(m.group(2))
        return Ring(m.group(1) == "1", ms) if ms is not None else Garbage("board time out of range", body)
    if m := _RE_LOOP.fullmatch(text):
        ms = _ms(m.group(2))
        return Loop(m.group(1) == "1", ms) if ms is not None else Garbage("board time out of range", body)
    if m := _RE_POL.fullmatch(text):
        ms = _ms(m.group(2))
        return Polarity(m.group(1) == "+", ms) if ms is not None else Garbage("board time out of range", body)
    if m := _RE_OK.fullmatch(text):
        return Ack(Command(m.group(1)))
    if m := _RE_STATUS.fullmatch(text):
        ms = _ms(m.group(5))
        if ms is None:
            return Garbage("board time out of range", body)
        return Status(m.group(1) == "OFF", m.group(2) == "1", m.group(3) == "+", m.group(4) == "1", ms)
    if m := _RE_HELLO.fullmatch(text):
        fields = dict(kv.split("=", 1) for kv in m.group(3).split())
        return Hello(m.group(1), m.group(2), fields)
    if m := _RE_ERR.fullmatch(text):
        return Error(m.group(1), m.group(2) or "")
    return Garbage("unknown message", body)


class MessageDecoder:
    """Host side: bytes from the board in, messages out. Garbage is returned too, and counted."""

    def __init__(self) -> None:
        self._split = LineSplitter()
        self.garbage = 0

    def feed(self, data: bytes) -> list[Message | Garbage]:
        out: list[Message | Garbage] = []
        for item in self._split.feed(data):
            parsed = item if isinstance(item, Garbage) else parse_message(item)
            if isinstance(parsed, Garbage):
                self.garbage += 1
            out.append(parsed)
        return out


# ------------------------------------------------------------------------------------------ board side
class CommandDecoder:
    """Board side (the emulator): bytes from the host in; each item is a Command or the error to reply."""

    def __init__(self) -> None:
        self._split = LineSplitter()

    def feed(self, data: bytes) -> list[Command | Error]:
        out: list[Command | Error] = []
        for item in self._split.feed(data):
            if isinstance(item, Garbage):
                if item.reason == "line too long":
                    out.append(Error(ErrorCode.TOO_LONG.value))
                elif item.reason == "non-ASCII byte":
                    out.append(Error(ErrorCode.UNKNOWN.value))
                else:
                    out.append(Error(ErrorCode.CHECKSUM.value))
                continue
            try:
                out.append(Command(item.decode("ascii")))
            except ValueError:
                out.append(Error(ErrorCode.UNKNOWN.value))
        return out
