"""Teltone TLE-A (with the TLE-TEST automated-test module) over its serial API: a sans-IO core and a thin
pyserial shell.

**Check the command set against the unit's manual before relying on it.** What is encoded here comes
from HARDWARE.md §5.1 only: commands are ``:unit,cmd,params<CR>`` with numeric command and parameter
codes (the one worked example: ``:0,13,16,1`` = ``TC_SENDTONE, TP_BUSY, TP_LINE1``), and the unit
reports ``!unit,type,msgno,params<CR><LF>`` with line-message numbers ``TM_OFFHOOK`` = 0, ``TM_ONHK`` = 1,
... ``TM_SIGLEVEL`` = 84. Every other command number (``TC_RING``, ``TC_SENDCALLERID``,
``TC_SETCALLERID_MODE`` ...) is unknown here: the rig file gives them (``tle_a.commands``), and a
command without a number is refused with a message naming that key. The meaning of the ``type`` field
of a message is not documented in our sources; it is kept as is.

* :class:`TleCodec` (sans-IO): :meth:`~TleCodec.command` builds the bytes of a command;
  :meth:`~TleCodec.feed` takes received bytes in any chunking and returns whole :class:`TleMessage`\\ s
  (garbage lines are counted and skipped, never raised).
* :class:`TleLineState`: the hook state and ring count of the TLE-A lines, from the messages.
* :class:`TleA`: the serial port, a reader thread feeding the codec, ``send``/``wait_for``.

The lab backend does not yet ring through the TLE-A (the parameters of ``TC_RING`` and the caller-ID
commands have to be taken from the manual first), so the capabilities it would give (``cid-faults``,
``ring-cadence``) are not claimed; this module is the tested base for that.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Command numbers known from HARDWARE.md §5.1; the rig file adds/overrides (``tle_a.commands``).
KNOWN_COMMANDS: dict[str, int] = {"send_tone": 13}
#: Tone parameters (``TP_*``) known from the same example.
TONE_PARAMS: dict[str, int] = {"busy": 16}
#: Line-message numbers (``TM_*``), HARDWARE.md §5.1.
MESSAGES: dict[int, str] = {0: "off-hook", 1: "on-hook", 2: "stutter", 3: "dial-tone", 4: "ringback",
                            6: "reorder", 7: "ring", 10: "sit", 12: "vmwi", 13: "sas", 16: "hold", 64: "flash",
                            65: "sweep", 67: "nu-tone", 84: "signal-level"}
MAX_LINE = 256  # longer "lines" are garbage


class TleError(Exception):
    """A command cannot be sent as asked, or the unit did not answer."""


@dataclass(frozen=True)
class TleMessage:
    unit: int
    kind: int  # the "type" field
    number: int  # TM_* message number
    params: tuple[int, ...] = ()
    raw: str = ""

    @property
    def name(self) -> str:
        return MESSAGES.get(self.number, f"message-{self.number}")


@dataclass
class TleCodec:
    """Framing of the TLE-A serial protocol, no I/O."""

    unit: int = 0
    commands: Mapping[str, int] = field(default_factory=dict)
    garbage: int = 0  # lines that did not parse
    _buf: bytearray = field(default_factory=bytearray, repr=False)

    def command_number(self, name: str) -> int:
        table = {**KNOWN_COMMANDS, **self.commands}
        try:
            return table[name]
        except KeyError:
            raise TleError(f"TLE-A command {name!r} has no number: add it under tle_a.commands in the rig file, "
                           f"from the unit's manual (known: {', '.join(sorted(table)) or 'none'})") from None

    def command(self, name: str | int, *params: int) -> bytes:
        """``:unit,cmd,p1,p2...<CR>``; ``name`` is a command name (looked up) or a raw number."""
        number = name if isinstance(name, int) else self.command_number(name)
        if number < 0 or any(p < 0 for p in params):
            raise TleError("TLE-A command and parameter codes are non-negative integers")
        return (":" + ",".join(str(v) for v in (self.unit, number, *params)) + "\r").encode("ascii")

    def feed(self, data: bytes) -> list[TleMessage]:
        """Received bytes (any chunking) -> the whole messages they complete."""
        self._buf += data
        out: list[TleMessage] = []
        while True:
            cut = min((i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0), default=-1)
            if cut < 0:
                if len(self._buf) > MAX_LINE:
                    self.garbage += 1
                    self._buf.clear()
                return out
            line = bytes(self._buf[:cut])
            del self._buf[:cut + 1]
            if not line.strip():
                continue
            msg = self._parse(line)
            if msg is None:
                self.garbage += 1
                log.debug("TLE-A: not a message: %r", line)
            else:
                out.append(msg)

    @staticmethod
    def _parse(line: bytes) -> TleMessage | None:
        try:
            text = line.decode("ascii").strip()
        except UnicodeDecodeError:
            return None
        if not text.startswith("!"):
            return None
        try:
            fields = [int(f) for f in text[1:].split(",")]
        except ValueError:
            return None
        if len(fields) < 3:
            return None
        return TleMessage(fields[0], fields[1], fields[2], tuple(fields[3:]), text)


@dataclass
class TleLineState:
    """Hook state and rings of each TLE-A line as its messages report them (line = first parameter,
    1 when a message has none: check against the manual)."""

    off_hook: dict[int, bool] = field(default_factory=dict)
    rings: dict[int, int] = field(default_factory=dict)
    flashes: dict[int, int] = field(default_factory=dict)

    def apply(self, msg: TleMessage) -> None:
        line = msg.params[0] if msg.params else 1
        if msg.name == "off-hook":
            self.off_hook[line] = True
        elif msg.name == "on-hook":
            self.off_hook[line] = False
        elif msg.name == "ring":
            self.rings[line] = self.rings.get(line, 0) + 1
        elif msg.name == "flash":
            self.flashes[line] = self.flashes.get(line, 0) + 1


class TleA:
    """The unit on a serial port: commands out, messages in (on a reader thread)."""

    def __init__(self, port: str, baud: int = 9600, *, unit: int = 0, commands: Mapping[str, int] | None = None,
                 on_message: Callable[[TleMessage], None] | None = None) -> None:
        import serial  # pyserial: only when a TLE-A is used

        self.codec = TleCodec(unit=unit, commands=dict(commands or {}))
        self.state = TleLineState()
        self.messages: list[TleMessage] = []
        self._on_message = on_message
        self._cv = threading.Condition()
        self._serial: Any = serial.Serial(port, baud, timeout=0.1)
        self._closed = False
        self._thread = threading.Thread(target=self._read, name="tle-a", daemon=True)
        self._thread.start()

    @classmethod
    def from_rig(cls, cfg: Any, **kw: Any) -> TleA:
        """From a :class:`hil.rig.TleAConfig`."""
        return cls(cfg.port, cfg.baud, unit=cfg.unit, commands=cfg.commands, **kw)

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self._serial.read(256)
            except Exception as e:  # the port went away: stop reading, say why
                if not self._closed:
                    log.error("TLE-A: serial read failed: %s", e)
                return
            if not data:
                continue
            for msg in self.codec.feed(data):
                with self._cv:
                    self.messages.append(msg)
                    self.state.apply(msg)
                    self._cv.notify_all()
                if self._on_message is not None:
                    self._on_message(msg)

    def send(self, name: str | int, *params: int) -> None:
        data = self.codec.command(name, *params)
        log.debug("TLE-A <- %r", data)
        self._serial.write(data)
        self._serial.flush()

    def send_tone(self, tone: str, line: int = 1) -> None:
        """``TC_SENDTONE`` with a ``TP_*`` tone (only ``busy`` is known here)."""
        try:
            code = TONE_PARAMS[tone]
        except KeyError:
            raise TleError(f"tone {tone!r} has no TP_ code here (known: {', '.join(TONE_PARAMS)})") from None
        self.send("send_tone", code, line)

    def wait_for(self, name: str, timeout: float, *, after: int = 0) -> TleMessage:
        """The first message named ``name`` (see :data:`MESSAGES`) at index ``after`` or later."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for m in self.messages[after:]:
                    if m.name == name:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TleError(f"no {name} message from the TLE-A within {timeout} s")
                self._cv.wait(left)

    def close(self) -> None:
        self._closed = True
        self._thread.join(1.0)
        self._serial.close()

    def __enter__(self) -> TleA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
