"""DLE shielding codec for the V.253 voice data states (sans-IO).

Receive side (DCE → DTE, :class:`DleDecoder`): a byte-by-byte state machine that keeps its state
across reads, so a ``DLE x`` pair split between two reads decodes exactly as if it came in one:

* ``DLE DLE`` → one 0x10 data byte; ``DLE SUB`` → two 0x10 data bytes;
* ``DLE ETX`` → end of the voice-receive stream (the decoder stops; what follows is command-state
  text and is kept in :attr:`DleDecoder.trailing`);
* ``DLE X … DLE .`` → a complex event packet (caller ID / distinctive ring on some chips);
* ``DLE /`` … ``DLE ~`` (or 0x7F): DTMF shielding. The digit repeats about every 70 ms inside the
  group; exactly one :class:`DleEvent` is reported per group (per key press). A bare ``DLE d``
  outside a group is one key press;
* any other ``DLE x`` → a typed :class:`DleEvent` (busy, dial tone, loop-current drop, ...).

Every event carries ``pos``: how many data bytes the decoder had produced before it, so the caller
can place the event in the audio stream (``pts``) exactly.

Transmit side (DTE → DCE): :func:`encode` doubles every 0x10; the ``DLE`` commands are constants.
:func:`exit_sequence` gives the triple-DLE fallback form that leaves a data state whatever the DCE's
escape parser was doing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DLE = 0x10
ETX = 0x03
SUB = 0x1A
CAN = 0x18
DEL = 0x7F

# DTE → DCE commands
DLE_ETX = bytes((DLE, ETX))  # end of transmit (after the buffer plays out)
DLE_CAN = bytes((DLE, CAN))  # clear the transmit buffer
DLE_ABORT_RX = b"\x10!"  # receive abort

DTMF_DIGITS = frozenset("0123456789*#ABCD")
_MAX_PACKET = 512


class DleKind(StrEnum):
    DTMF = "dtmf"
    END = "end"  # DLE ETX: end of the voice-receive stream
    PACKET = "packet"  # DLE X ... DLE .
    RING = "ring"  # R
    BUSY = "busy"  # b (K)
    DIAL_TONE = "dial-tone"  # d (i)
    PRESUMED_HANGUP = "presumed-hangup"  # s: no voice since the start, then silence > +VSD
    QUIET = "quiet"  # q: voice was present, then silence > +VSD
    LOOP_INTERRUPT = "loop-interrupt"  # l: loop-current interruption (CPC)
    POLARITY_REVERSAL = "polarity-reversal"  # L
    HANDSET_ON_HOOK = "handset-on-hook"  # h
    HANDSET_OFF_HOOK = "handset-off-hook"  # H
    EXTENSION_ON_HOOK = "extension-on-hook"  # p
    EXTENSION_OFF_HOOK = "extension-off-hook"  # P
    FAX_CALLING = "fax-calling"  # c (m)
    DATA_CALLING = "data-calling"  # e
    ANSWER_TONE = "answer-tone"  # a
    DATA_ANSWER = "data-answer"  # f
    BONG = "bong"  # $
    SIT = "sit"  # J
    RINGBACK = "ringback"  # r
    TDD = "tdd"  # t
    VOICE = "voice"  # v V
    CALL_WAITING = "call-waiting"  # w
    TX_UNDERRUN = "tx-underrun"  # u
    RX_OVERRUN = "rx-overrun"  # o
    LOST_DATA = "lost-data"  # Y
    INVALID_FORMAT = "invalid-format"  # E
    TIMING_MARK = "timing-mark"  # T
    XON = "xon"  # Q
    XOFF = "xoff"  # S
    UNKNOWN = "unknown"


_KINDS: dict[str, DleKind] = {
    "R": DleKind.RING, "b": DleKind.BUSY, "K": DleKind.BUSY, "d": DleKind.DIAL_TONE, "i": DleKind.DIAL_TONE,
    "s": DleKind.PRESUMED_HANGUP, "q": DleKind.QUIET, "l": DleKind.LOOP_INTERRUPT,
    "L": DleKind.POLARITY_REVERSAL, "h": DleKind.HANDSET_ON_HOOK, "H": DleKind.HANDSET_OFF_HOOK,
    "p": DleKind.EXTENSION_ON_HOOK, "P": DleKind.EXTENSION_OFF_HOOK, "c": DleKind.FAX_CALLING,
    "m": DleKind.FAX_CALLING, "e": DleKind.DATA_CALLING, "a": DleKind.ANSWER_TONE, "f": DleKind.DATA_ANSWER,
    "$": DleKind.BONG, "J": DleKind.SIT, "r": DleKind.RINGBACK, "t": DleKind.TDD, "v": DleKind.VOICE,
    "V": DleKind.VOICE, "w": DleKind.CALL_WAITING, "u": DleKind.TX_UNDERRUN, "o": DleKind.RX_OVERRUN,
    "Y": DleKind.LOST_DATA, "E": DleKind.INVALID_FORMAT, "T": DleKind.TIMING_MARK, "Q": DleKind.XON,
    "S": DleKind.XOFF,
}


def kind_of(code: str) -> DleKind:
    """The event kind of a ``DLE <code>`` (DTMF digits included)."""
    if code in DTMF_DIGITS:
        return DleKind.DTMF
    return _KINDS.get(code, DleKind.UNKNOWN)


@dataclass(frozen=True, slots=True)
class DleEvent:
    kind: DleKind
    code: str  # the character after DLE ("5", "b", "l", ...); the payload text for PACKET
    pos: int  # data bytes produced before this event (position in the audio stream)


@dataclass(frozen=True, slots=True)
class DecoderState:
    """Everything the decoder remembers between reads (for tests and diagnostics)."""

    pending_dle: bool
    in_dtmf_group: bool
    group_digit: str
    in_packet: bool
    ended: bool
    data_bytes: int
    suppressed_repeats: int


Item = bytes | DleEvent


class DleDecoder:
    """Decode a DLE-shielded voice-receive (or transmit-side event) stream, byte by byte."""

    def __init__(self, carry: DleDecoder | None = None) -> None:
        """``carry``: the decoder of the previous data state of the same call. A key held while the
        modem changes state (barge-in: +VTX aborted, +VRX entered) keeps repeating its digit; taking
        over the open DTMF group keeps that one key press."""
        self._pending = False
        self._in_group: bool = carry.state.in_dtmf_group if carry else False
        self._group_digit: str = carry.state.group_digit if carry else ""
        self._in_packet = False
        self._packet = bytearray()
        self._ended = False
        self._count = 0
        self._suppressed = 0
        self.trailing = b""  # bytes after DLE ETX (command-state text)

    @property
    def state(self) -> DecoderState:
        return DecoderState(self._pending, self._in_group, self._group_digit, self._in_packet, self._ended,
                            self._count, self._suppressed)

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def data_bytes(self) -> int:
        return self._count

    def take_trailing(self) -> bytes:
        out, self.trailing = self.trailing, b""
        return out

    def feed(self, data: bytes) -> list[Item]:
        """Decode ``data``; returns data chunks (bytes) and events in stream order.

        After ``DLE ETX`` the decoder stops: the END event is the last item and the remaining bytes
        go to :attr:`trailing`. Feeding an ended decoder appends to ``trailing``.
        """
        if self._ended:
            self.trailing += bytes(data)
            return []
        out: list[Item] = []
        buf = bytearray()
        i = 0
        n = len(data)
        while i < n:
            if self._pending:
                self._pending = False
                b = data[i]
                i += 1
                if self._in_packet:
                    self._packet_byte(b, out)
                    continue
                if b == DLE:
                    buf.append(DLE)
                elif b == SUB:
                    buf += b"\x10\x10"
                elif b == ETX:
                    self._flush(buf, out)
                    out.append(DleEvent(DleKind.END, "", self._count))
                    self._ended = True
                    self.trailing = bytes(data[i:])
                    return out
                else:
                    self._flush(buf, out)
                    self._event(b, out)
                continue
            if self._in_packet:
                j = data.find(DLE, i)
                end = n if j < 0 else j
                self._packet += data[i:end]
                if len(self._packet) > _MAX_PACKET:  # runaway packet (garbage): give up on it
                    self._in_packet = False
                    self._packet.clear()
                if j < 0:
                    break
                self._pending = True
                i = j + 1
                continue
            j = data.find(DLE, i)
            if j < 0:
                buf += data[i:]
                break
            buf += data[i:j]
            self._pending = True
            i = j + 1
        self._flush(buf, out)
        return out

    # -------------------------------------------------------------------------------- internals
    def _flush(self, buf: bytearray, out: list[Item]) -> None:
        if buf:
            self._count += len(buf)
            out.append(bytes(buf))
            buf.clear()

    def _packet_byte(self, b: int, out: list[Item]) -> None:
        if b == DLE:
            self._packet.append(DLE)
        elif b == ord("."):
            self._in_packet = False
            out.append(DleEvent(DleKind.PACKET, self._packet.decode("latin-1"), self._count))
            self._packet.clear()
        # any other DLE x inside a packet is not defined; drop it

    def _event(self, b: int, out: list[Item]) -> None:
        code = chr(b)
        if code == "X":
            self._in_packet = True
            self._packet.clear()
            return
        if code == "/":
            self._in_group = True
            self._group_digit = ""
            return
        if code == "~" or b == DEL:
            self._in_group = False
            self._group_digit = ""
            return
        if code in DTMF_DIGITS:
            if self._in_group:
                if code == self._group_digit:
                    self._suppressed += 1
                    return
                self._group_digit = code
            out.append(DleEvent(DleKind.DTMF, code, self._count))
            return
        out.append(DleEvent(kind_of(code), code, self._count))


def encode(data: bytes) -> bytes:
    """Shield audio for transmit: every 0x10 data byte is sent as DLE DLE."""
    return bytes(data).replace(b"\x10", b"\x10\x10")


def exit_sequence(code: bytes, triple: bool = False) -> bytes:
    """``DLE <code>`` to leave a data state (``b"!"`` receive abort, ``b"\\x03"`` end of transmit).

    ``triple`` gives ``DLE DLE DLE <code>``: a literal 0x10 followed by the command. A DCE whose escape
    parser was left waiting after a stray 0x10 has already recovered by the time a retry arrives, and
    parts such as the Zoom 3095 only leave VTX/VRX on this form, so it is the fallback.
    """
    if len(code) != 1:
        raise ValueError("one command byte")
    return (b"\x10\x10\x10" if triple else b"\x10") + code
