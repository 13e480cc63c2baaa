"""The AT session with a V.253 voice modem (sans-IO).

It owns the whole byte stream of the serial port, in each of the DCE's three states:

* **command state**: lines are split on CR/LF; the pending command collects info lines until its
  final result (``OK``, ``ERROR``, ``CONNECT``, ``VCON``, ``NO CARRIER`` ...). ``RING`` and caller-ID
  lines are unsolicited and may come between any two lines; echoed commands are dropped; anything
  else is reported as :class:`TextLine` (garbage included: it never raises).
* **voice receive** (``+VRX``) and **voice transmit** (``+VTX``): the bytes go through the
  :class:`~drivers.modem.dle.DleDecoder`; audio and DLE events come out in stream order.

Sequences are *procedures* (generators yielding steps: send a command and wait for its result,
send raw bytes, wait to leave a data state, flush the port). One runs at a time; each ends with a
:class:`Done` event. Time is explicit: ``feed(data, now)``, ``poll(now)``, ``get_timer()``.

Procedures (per profile, see drivers.modem.profiles):

* ``initialize``: ``AT`` (retried; a modem left in a voice state gets the triple-DLE exits),
  flush, ``ATZ``, ``ATE0V1Q0``, ``ATI0``/``ATI3``/``AT+FMM?`` (profile detection), ``AT+GCI``,
  ``AT+VCID=1`` after every reset (verified on chips that drop it), ``AT+FCLASS=8``, ``AT+VSM=?``
  (codec chosen by name), ``AT+VSM=<id>,8000``, ``AT+VSD``, ``AT+IFC=2,2`` where supported,
  ``AT-STE``, gains, extra commands;
* ``answer``: ``AT+VLS=1`` (never ``ATA``, which is a data answer);
* ``start_rx`` / ``start_tx``: ``AT+VRX`` / ``AT+VTX`` → ``CONNECT``;
* ``stop_rx``: ``DLE !``; the USR5637 replies ``DLE ETX`` then ``OK``, Conexant just ``OK`` (both are
  accepted whatever the profile); triple-DLE fallback;
* ``stop_tx``: ``DLE ETX`` (or ``DLE CAN DLE ETX`` to drop the queued audio), ``OK`` once the
  buffer has played; triple-DLE fallback;
* ``hang_up``: leave the data state, flush, ``ATH``, then re-initialise without re-identifying
  (``ATZ`` … ``+VCID=1`` … ``+VSD``), so no per-call state survives (emxsys #54).
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from enum import StrEnum

from drivers.modem import dle
from drivers.modem.cid import parse_cid_line
from drivers.modem.codec import VoiceCodec, VsmEntry, choose_codec, classify, parse_vsm_list
from drivers.modem.profiles import Profile, detect_profile

log = logging.getLogger(__name__)

CR = b"\r"
_FINALS = {"OK", "ERROR", "CONNECT", "VCON", "NO CARRIER", "BUSY", "NO DIALTONE", "NO DIAL TONE", "NO ANSWER"}
_OK_FINALS = {"OK", "VCON", "CONNECT"}
_DATA_COMMANDS = {"AT+VRX": "vrx", "AT+VTX": "vtx"}
_MAX_LINE = 256
_OK_IN_DATA = b"\nOK\r\n"
_ERROR_IN_DATA = b"\nERROR\r\n"
ETX_OK_GRACE_S = 1.0  # after DLE ETX, how long to wait for the OK that follows


class Mode(StrEnum):
    COMMAND = "command"
    VRX = "vrx"
    VTX = "vtx"


# ------------------------------------------------------------------------------------------ events
@dataclass(frozen=True)
class Ring:
    pass


@dataclass(frozen=True)
class CidField:
    tag: str
    value: str


@dataclass(frozen=True)
class TextLine:
    """An unsolicited line that is neither RING nor caller ID (NO CARRIER, DRON=..., garbage)."""

    line: str


@dataclass(frozen=True)
class Audio:
    data: bytes
    pos: int  # byte offset of data[0] since the +VRX stream began


@dataclass(frozen=True)
class Dle:
    event: dle.DleEvent
    mode: Mode  # the data state it arrived in


@dataclass(frozen=True)
class StreamEnded:
    """The DCE left a data state on its own (not because we asked)."""

    mode: Mode


@dataclass(frozen=True)
class Done:
    name: str
    ok: bool
    detail: str = ""


AtEvent = Ring | CidField | TextLine | Audio | Dle | StreamEnded | Done


# ------------------------------------------------------------------------------------------ steps
@dataclass(frozen=True)
class Reply:
    final: str  # "OK", "ERROR", "CONNECT", "VCON", ..., or "TIMEOUT"
    lines: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.final in _OK_FINALS


@dataclass(frozen=True)
class Cmd:
    text: str
    timeout: float = 2.0


@dataclass(frozen=True)
class Raw:
    data: bytes


@dataclass(frozen=True)
class WaitExit:
    timeout: float


@dataclass(frozen=True)
class Flush:
    pass


@dataclass(frozen=True)
class Pause:
    seconds: float


Step = Cmd | Raw | WaitExit | Flush | Pause
Procedure = Generator[Step, Reply | bool | None, tuple[bool, str]]


@dataclass(frozen=True)
class SessionSettings:
    profile: Profile | None = None  # forced; None: detect from ATI0/ATI3/+FMM?
    country: str | None = None  # AT+GCI=<T.35 hex>, e.g. "B4" for the UK
    codec_preference: tuple[str, ...] | None = None  # None: the profile's
    vsd_sdi: int = 50  # +VSD silence interval in 0.1 s (0: the modem reports no silence)
    rtscts: bool = True  # ask the modem for RTS/CTS (AT+IFC=2,2) where the profile supports it
    extra_init: tuple[str, ...] = ()  # e.g. ("AT!4886=02",) for French Conexant parts
    rx_gain: int | None = None  # AT+VGR
    tx_gain: int | None = None  # AT+VGT
    exit_triple_dle: bool | None = None  # None: the profile's
    pcm8_signed: bool | None = None  # None: the profile's
    command_timeout_s: float = 2.0
    sync_attempts: int = 3


@dataclass
class _Pending:
    cmd: Cmd
    deadline: float
    lines: list[str] = field(default_factory=list)


class AtSession:
    def __init__(self, settings: SessionSettings | None = None) -> None:
        self.settings = settings or SessionSettings()
        self.profile: Profile | None = self.settings.profile
        self.codec: VoiceCodec | None = None
        self.mode = Mode.COMMAND
        self.identity: dict[str, tuple[str, ...]] = {}
        self.garbage_lines = 0
        self._out = bytearray()
        self._flush = False
        self._events: deque[AtEvent] = deque()
        self._line = bytearray()
        self._skip_lf = False
        self._decoder = dle.DleDecoder()
        self._scan = bytearray()
        # procedure state
        self._proc: Procedure | None = None
        self._proc_name = ""
        self._pending: _Pending | None = None
        self._wait_exit_deadline: float | None = None
        self._exiting = False
        self._exit_ok = False
        self._etx_grace_until: float | None = None
        self._pause_until: float | None = None
        self.learned_triple_dle = False  # a plain DLE exit went unanswered and the triple form worked

    # -------------------------------------------------------------------------------- I/O surface
    @property
    def busy(self) -> bool:
        return self._proc is not None

    @property
    def procedure(self) -> str:
        return self._proc_name if self._proc is not None else ""

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def take_flush(self) -> bool:
        """True once after a procedure asked for the port's buffers to be flushed (do it before writing)."""
        f, self._flush = self._flush, False
        return f

    def next_event(self) -> AtEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        times = [t for t in (self._pending.deadline if self._pending else None, self._wait_exit_deadline,
                             self._etx_grace_until, self._pause_until) if t is not None]
        return min(times) if times else None

    def send_audio(self, data: bytes) -> None:
        """Queue transmit audio (VTX only); 0x10 bytes are doubled here."""
        if self.mode is not Mode.VTX or self._exiting:
            return
        self._out += dle.encode(data)

    def feed(self, data: bytes, now: float) -> None:
        while data:
            if self.mode is Mode.COMMAND:
                data = self._feed_command(data, now)
            else:
                data = self._feed_data(data, now)

    def poll(self, now: float) -> None:
        if self._pending is not None and now >= self._pending.deadline:
            p = self._pending
            self._pending = None
            log.debug("%s: no answer in %.1f s", p.cmd.text, p.cmd.timeout)
            self._resume(Reply("TIMEOUT", tuple(p.lines)), now)
        if self._pause_until is not None and now >= self._pause_until:
            self._pause_until = None
            self._resume(None, now)
        if self._etx_grace_until is not None and now >= self._etx_grace_until:
            self._etx_grace_until = None
            self._exit_ok = True  # DLE ETX came, the OK did not: the data state is over all the same
        if self._wait_exit_deadline is not None:
            if self._exit_ok:
                self._wait_exit_deadline = None
                self._resume(True, now)
            elif now >= self._wait_exit_deadline:
                self._wait_exit_deadline = None
                self._resume(False, now)

    # -------------------------------------------------------------------------------- procedures
    def initialize(self, now: float, identify: bool = True) -> None:
        self._run("initialize", self._init_steps(identify), now)

    def answer(self, now: float) -> None:
        self._run("answer", self._single(Cmd("AT+VLS=1", 5.0)), now)

    def start_rx(self, now: float) -> None:
        self._run("start_rx", self._single(Cmd("AT+VRX", 3.0)), now)

    def start_tx(self, now: float) -> None:
        self._run("start_tx", self._single(Cmd("AT+VTX", 3.0)), now)

    def stop_rx(self, now: float) -> None:
        self._run("stop_rx", self._stop_rx_steps(), now)

    def stop_tx(self, now: float, abort: bool = False, drain_s: float = 0.0) -> None:
        self._run("stop_tx", self._stop_tx_steps(abort, drain_s), now)

    def hang_up(self, now: float, reinit: bool = True) -> None:
        self._run("hang_up", self._hang_up_steps(reinit), now)

    def abort_procedure(self) -> None:
        """Forget the running procedure without a Done event (device lost / re-opened)."""
        self._proc = None
        self._pending = None
        self._wait_exit_deadline = None
        self._pause_until = None

    def reset(self) -> None:
        """A new device behind the port: forget modes, buffers and the running procedure."""
        self.abort_procedure()
        self.mode = Mode.COMMAND
        self._out.clear()
        self._line.clear()
        self._scan.clear()
        self._events.clear()
        self._decoder = dle.DleDecoder()
        self._exiting = self._exit_ok = False
        self._etx_grace_until = None
        self._skip_lf = False
        self.learned_triple_dle = False

    # -------------------------------------------------------------------------------- step scripts
    @property
    def _triple(self) -> bool:
        if self.settings.exit_triple_dle is not None:
            return self.settings.exit_triple_dle
        return self.learned_triple_dle or (self.profile.exit_triple_dle if self.profile else False)

    def _single(self, cmd: Cmd) -> Procedure:
        r = yield cmd
        assert isinstance(r, Reply)
        return r.ok, r.final

    def _cmd(self, text: str, timeout: float | None = None) -> Cmd:
        return Cmd(text, self.settings.command_timeout_s if timeout is None else timeout)

    def _init_steps(self, identify: bool) -> Procedure:
        s = self.settings
        synced = False
        for attempt in range(max(1, s.sync_attempts)):
            r = yield self._cmd("AT", 1.0)
            assert isinstance(r, Reply)
            if r.ok:
                synced = True
                break
            if attempt == 0:
                # perhaps left in +VRX/+VTX by a previous run: leave both states, end the line, let the
                # replies come and go, then drop them so that they are not taken for the next answers
                yield Raw(dle.exit_sequence(b"!", triple=True) + dle.exit_sequence(b"\x03", triple=True) + CR)
                yield Pause(0.5)
            yield Flush()
        if not synced:
            return False, "no answer to AT"
        yield Flush()
        r = yield self._cmd("ATZ", 5.0)
        assert isinstance(r, Reply)
        if not r.ok:
            return False, f"ATZ: {r.final}"
        r = yield self._cmd("ATE0V1Q0")
        assert isinstance(r, Reply)
        if not r.ok:
            return False, f"ATE0V1Q0: {r.final}"
        if identify or self.profile is None:
            ident: dict[str, tuple[str, ...]] = {}
            for c in ("ATI0", "ATI3", "AT+FMM?"):
                r = yield self._cmd(c)
                assert isinstance(r, Reply)
                ident[c] = r.lines if r.ok else ()
            self.identity = ident
            if s.profile is None:
                self.profile = detect_profile(ident["ATI0"], ident["ATI3"], ident["AT+FMM?"])
            log.info("modem %s → profile %s", " / ".join(" ".join(v) for v in ident.values()),
                     self.profile.name if self.profile else "?")
        profile = self.profile
        assert profile is not None
        if s.country:
            r = yield self._cmd(f"AT+GCI={s.country}")
            if isinstance(r, Reply) and not r.ok:
                log.warning("AT+GCI=%s refused (%s)", s.country, r.final)
        ok = yield from self._caller_id_steps(profile)
        if not ok:
            log.warning("caller ID could not be enabled; calls will arrive without it")
        r = yield self._cmd("AT+FCLASS=8")
        assert isinstance(r, Reply)
        if not r.ok:
            return False, f"not a voice modem (AT+FCLASS=8: {r.final})"
        if self.codec is None:
            r = yield self._cmd("AT+VSM=?")
            assert isinstance(r, Reply)
            entries = parse_vsm_list(r.lines) if r.ok else []
            pref = s.codec_preference or profile.codec_preference
            signed = profile.pcm8_signed if s.pcm8_signed is None else s.pcm8_signed
            codec = choose_codec(entries, pref, signed)
            if codec is None:
                fid, fname, fbits = profile.fallback_vsm
                fmt = classify(VsmEntry(fid, fname, fbits, ()), signed)
                if fmt is None:
                    return False, "no usable voice codec"
                codec = VoiceCodec(fid, fname, fmt)
                log.warning("AT+VSM=? offered nothing usable (%s); trying %d %r", entries, fid, fname)
            self.codec = codec
        r = yield self._cmd(f"AT+VSM={self.codec.vsm_id},{self.codec.rate}{profile.vsm_extra}")
        assert isinstance(r, Reply)
        if not r.ok:
            return False, f"AT+VSM refused ({r.final})"
        r = yield self._cmd(f"AT+VSD={profile.vsd_sds},{s.vsd_sdi}")
        if isinstance(r, Reply) and not r.ok:
            log.info("AT+VSD refused (%s)", r.final)
        if s.rtscts and profile.supports_ifc:
            r = yield self._cmd("AT+IFC=2,2")
            if isinstance(r, Reply) and not r.ok:
                log.info("AT+IFC=2,2 refused (%s): no hardware flow control", r.final)
        if profile.ste is not None:
            r = yield self._cmd(f"AT-STE={profile.ste}")
            if isinstance(r, Reply) and not r.ok:
                log.info("AT-STE=%d refused (%s)", profile.ste, r.final)
        for text in ([f"AT+VGR={s.rx_gain}"] if s.rx_gain is not None else []) + (
                [f"AT+VGT={s.tx_gain}"] if s.tx_gain is not None else []) + list(s.extra_init):
            r = yield self._cmd(text)
            if isinstance(r, Reply) and not r.ok:
                log.warning("%s refused (%s)", text, r.final)
        return True, f"{profile.name} {self.codec.name}"

    def _caller_id_steps(self, profile: Profile) -> Generator[Step, Reply | bool | None, bool]:
        """``AT+VCID=1`` after every reset; verified (and re-sent once) on chips that drop it."""
        r = yield self._cmd("AT+VCID=1")
        assert isinstance(r, Reply)
        if not r.ok:
            r = yield self._cmd("AT#CID=1")  # the older Rockwell form
            assert isinstance(r, Reply)
            return r.ok
        if not profile.verify_vcid:
            return True
        for attempt in range(2):
            q = yield self._cmd("AT+VCID?")
            assert isinstance(q, Reply)
            if q.ok and any(re.search(r"(^|[:\s])1\s*$", line) for line in q.lines):
                return True
            if attempt == 0:
                log.info("+VCID did not stick (%s); sending it again", q.lines)
                yield self._cmd("AT+VCID=1")
        return False

    def _stop_rx_steps(self) -> Generator[Step, Reply | bool | None, tuple[bool, str]]:
        if self.mode is not Mode.VRX:
            return True, "not receiving"
        self._begin_exit()
        yield Raw(dle.exit_sequence(b"!", triple=self._triple))
        ok = yield WaitExit(2.0)
        if not ok:
            log.warning("no answer to DLE !; sending DLE DLE DLE !")
            yield Raw(dle.exit_sequence(b"!", triple=True))
            ok = yield WaitExit(2.0)
            self.learned_triple_dle = bool(ok)
        return self._end_exit(bool(ok))

    def _stop_tx_steps(self, abort: bool, drain_s: float) -> Generator[Step, Reply | bool | None, tuple[bool, str]]:
        if self.mode is not Mode.VTX:
            return True, "not transmitting"
        self._begin_exit()
        yield Raw((dle.DLE_CAN if abort else b"") + dle.exit_sequence(b"\x03", triple=self._triple))
        ok = yield WaitExit((0.0 if abort else max(0.0, drain_s)) + 2.0)
        if not ok:
            log.warning("no OK after DLE ETX; sending DLE DLE DLE ETX")
            yield Raw(dle.exit_sequence(b"\x03", triple=True))
            ok = yield WaitExit(2.0)
            self.learned_triple_dle = bool(ok)
        return self._end_exit(bool(ok))

    def _hang_up_steps(self, reinit: bool) -> Procedure:
        if self.mode is Mode.VRX:
            yield from self._stop_rx_steps()
        elif self.mode is Mode.VTX:
            yield from self._stop_tx_steps(abort=True, drain_s=0.0)
        yield Flush()
        self._decoder = dle.DleDecoder()  # nothing of this call's DTMF state reaches the next
        r = yield self._cmd("ATH", 5.0)
        assert isinstance(r, Reply)
        if not r.ok:
            r = yield self._cmd("AT+VLS=0", 5.0)
            assert isinstance(r, Reply)
            if not r.ok:
                return False, f"ATH: {r.final}"
        if not reinit:
            return True, "on-hook"
        result = yield from self._init_steps(identify=False)
        return result

    def _begin_exit(self) -> None:
        self._exiting = True
        self._exit_ok = False
        self._scan.clear()

    def _end_exit(self, ok: bool) -> tuple[bool, str]:
        self._exiting = False
        self._etx_grace_until = None
        if self.mode is not Mode.COMMAND:
            log.warning("the modem did not leave %s; assuming command state", self.mode)
            self.mode = Mode.COMMAND
            self._line.clear()
        return ok, "left data state" if ok else "no answer"

    # -------------------------------------------------------------------------------- running
    def _run(self, name: str, proc: Procedure, now: float) -> None:
        if self._proc is not None:
            raise RuntimeError(f"AT session busy with {self._proc_name}; cannot start {name}")
        self._proc = proc
        self._proc_name = name
        self._resume(None, now)

    def _resume(self, value: Reply | bool | None, now: float) -> None:
        proc = self._proc
        if proc is None:
            return
        while True:
            try:
                step = proc.send(value)
            except StopIteration as stop:
                ok, detail = stop.value
                name = self._proc_name
                self._proc = None
                self._proc_name = ""
                self._events.append(Done(name, ok, detail))
                return
            value = None
            if isinstance(step, Cmd):
                self._pending = _Pending(step, now + step.timeout)
                self._out += step.text.encode("ascii") + CR
                return
            if isinstance(step, Raw):
                self._out += step.data
                continue
            if isinstance(step, Flush):
                self._flush = True
                self._line.clear()
                continue
            if isinstance(step, Pause):
                self._pause_until = now + step.seconds
                return
            if isinstance(step, WaitExit):
                if self._exit_ok:
                    value = True
                    continue
                self._wait_exit_deadline = now + step.timeout
                return

    def _complete(self, final: str, now: float) -> None:
        p = self._pending
        assert p is not None
        self._pending = None
        target = _DATA_COMMANDS.get(p.cmd.text.upper())
        if final == "CONNECT" and target:
            self.mode = Mode(target)
            self._decoder = dle.DleDecoder(carry=self._decoder)
            self._scan.clear()
            self._skip_lf = True
        self._resume(Reply(final, tuple(p.lines)), now)

    # -------------------------------------------------------------------------------- command state
    def _feed_command(self, data: bytes, now: float) -> bytes:
        for i, b in enumerate(data):
            if b in (0x0D, 0x0A):
                if self._line:
                    raw = bytes(self._line)
                    self._line.clear()
                    self._on_line(raw, now)
                    if self.mode is not Mode.COMMAND:
                        return data[i + 1:]
                continue
            if len(self._line) < _MAX_LINE:
                self._line.append(b)
        return b""

    def _on_line(self, raw: bytes, now: float) -> None:
        text = raw.decode("latin-1")
        s = "".join(c for c in text if c.isprintable()).strip()
        if not s:
            return
        if len(s) < len(text.strip()):
            self.garbage_lines += 1  # control bytes inside a line: keep what is printable
        up = s.upper()
        if up == "RING" or re.fullmatch(r"RING\s*\S{0,3}", up):
            self._events.append(Ring())
            return
        cid = parse_cid_line(s)
        if cid is not None:
            self._events.append(CidField(*cid))
            return
        if up.startswith(("DRON", "DROF")):
            return
        if self._pending is not None:
            if up == self._pending.cmd.text.upper():
                return  # echo (before ATE0 took effect)
            final = up if up in _FINALS else ("CONNECT" if up.startswith("CONNECT") else (
                "ERROR" if up.startswith("+CME ERROR") else ""))
            if final:
                self._complete(final, now)
            else:
                self._pending.lines.append(s)
            return
        if self._etx_grace_until is not None and up == "OK":
            self._etx_grace_until = None
            self._exit_ok = True
            self.poll(now)
            return
        self._events.append(TextLine(s))

    # -------------------------------------------------------------------------------- data states
    def _feed_data(self, data: bytes, now: float) -> bytes:
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
                if not data:
                    return b""
        mode = self.mode
        items = self._decoder.feed(data)
        for idx, item in enumerate(items):
            if isinstance(item, bytes):
                if mode is Mode.VRX and not self._exiting:
                    self._events.append(Audio(item, self._decoder.data_bytes - self._sum_after(items, idx)))
                    continue
                # text inside the data state: the OK that ends it (VTX, or Conexant's reply to DLE !)
                rest = self._scan_for_ok(item, now)
                if rest is not None:
                    tail = rest + b"".join(i for i in items[idx + 1:] if isinstance(i, bytes))
                    return tail + self._decoder.take_trailing()
                continue
            if item.kind is dle.DleKind.END:
                self.mode = Mode.COMMAND
                self._line.clear()
                if self._exiting:
                    self._etx_grace_until = now + ETX_OK_GRACE_S
                else:
                    self._events.append(StreamEnded(mode))
                return self._decoder.take_trailing()
            self._events.append(Dle(item, mode))
        return b""

    @staticmethod
    def _sum_after(items: list[dle.Item], idx: int) -> int:
        """Data bytes in items[idx:] (to turn the decoder's running count into this chunk's offset)."""
        return sum(len(i) for i in items[idx:] if isinstance(i, bytes))

    def _scan_for_ok(self, text: bytes, now: float) -> bytes | None:
        """Look for the final result inside the data state; return the bytes after it when found."""
        self._scan += text
        for pat, ok in ((_OK_IN_DATA, True), (_ERROR_IN_DATA, False)):
            k = self._scan.find(pat)
            if k >= 0:
                rest = bytes(self._scan[k + len(pat):])
                self._scan.clear()
                was = self.mode
                self.mode = Mode.COMMAND
                self._line.clear()
                if self._exiting:
                    if not ok:
                        log.warning("ERROR while leaving %s", was)
                    self._exit_ok = True  # in command state either way
                    self.poll(now)
                else:
                    self._events.append(StreamEnded(was))
                return rest
        if len(self._scan) > 64:
            del self._scan[:-16]
        return None
