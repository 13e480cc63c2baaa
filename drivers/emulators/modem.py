"""A V.253 voice modem on a pty, with the quirks of real chips (HARDWARE.md §1, §5.4).

Two layers:

* :class:`ModemDevice` — the device as a sans-IO state machine: ``receive(data, now)`` takes what
  the DTE wrote, ``poll(now)`` returns the byte chunks the modem sends, all on an explicit clock.
  Tests drive it on a virtual clock; the pty shell drives it on ``time.monotonic()``.
* :class:`FakeV253Modem` — the shell: a pty pair (raw mode) and a thread that runs the device in
  real time on absolute deadlines. The DTE opens :attr:`FakeV253Modem.path` (a stable symlink when
  ``link`` is given, as a udev rule would make). It can vanish (close its side) and reappear (a new
  pty behind the same symlink: re-enumeration).

What the device models (each profile in :data:`EMU_PROFILES` sets the quirks):

* command state: ``AT`` commands with echo until ``ATE0``, ``OK``/``ERROR``/``CONNECT``/``VCON``;
  ``ATI0``/``ATI3``/``+FMM?`` answers; a ``+VSM=?`` table; ``+VSD`` (Conexant takes only 0 as its
  first argument); no ``+IFC`` on Conexant; ``-STE`` only on Conexant; ``ATZ`` clears ``+VCID`` on
  Conexant; ``ATA`` is counted (a voice DTE must never send it);
* ringing with a cadence; caller ID before or after the first RING, with or without spaces around
  ``=``, missing fields, ``P``/``O``, garbage lines; only when ``+VCID=1``;
* the line after off-hook (``+VLS=1``): the caller's audio at 8 kHz in line time, whatever state the
  modem is in (half duplex: what plays while it transmits is lost), plus the line's own noise and
  mains hum when configured (``line_noise_dbm0``, ``hum``); going off-hook while no call rings
  seizes the line: the exchange then gives dial tone for ``dial_tone_s`` (reported as ``DLE d``
  after the modem's detection delay), then the line is quiet; DLE events placed at exact sample
  positions: DTMF as ``DLE / d d d ~`` with the digit repeated every 70 ms (or bare ``DLE d``),
  the disconnect signals (CPC ``DLE l`` — on Conexant only with ``-STE`` bit 2 —, busy / reorder /
  dial tone with the modem's detection delay, silence with ``+VSD``'s ``DLE q``/``DLE s``, polarity
  reversal);
* ``+VRX``: the line's audio encoded with the chosen ``+VSM`` codec, DLE doubled (optionally
  ``DLE SUB`` for two), in 20 ms chunks, each chunk split inside its first DLE pair; ``DLE !`` answered
  per profile (USR: ``DLE ETX`` then ``OK``; Conexant: ``OK``);
* ``+VTX``: the DTE's audio into a finite buffer played at 8000 samples/s; an empty buffer before
  ``DLE ETX`` is an underrun (``DLE u``); ``DLE CAN`` clears the buffer; ``DLE ETX`` answers ``OK``
  once the buffer has played. What was played is recorded (:meth:`ModemDevice.transmitted`);
* the Zoom 3095 quirk: it leaves ``+VTX``/``+VRX`` only on ``DLE DLE DLE ETX``/``DLE DLE DLE !``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from drivers.emulators.line_audio import Hum
from media.frame import SAMPLE_RATE, Samples, to_int16
from media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from media.levels import dbm0_to_rms
from media.tones import ToneGenerator

log = logging.getLogger(__name__)

DLE = 0x10
Fmt = Literal["ulaw", "alaw", "u8", "s8", "s16le"]


# ------------------------------------------------------------------------------------------ profiles
@dataclass(frozen=True)
class VsmRow:
    cml: int
    name: str
    bits: int
    fmt: Fmt | None  # None: a compression the emulator does not stream (ADPCM)
    rates: str = "8000"  # as printed in the +VSM=? answer


@dataclass(frozen=True)
class EmuProfile:
    name: str
    ati0: str
    ati3: str
    fmm: str | None  # None: AT+FMM? → ERROR
    vsm: tuple[VsmRow, ...]
    vsm_prefix: str = ""  # "+VSM: " on chips that prefix the table lines
    cid_spaces: bool = True
    rx_abort_reply: Literal["ok", "dle-etx-ok"] = "ok"
    supports_ifc: bool = True
    supports_ste: bool = False
    vsd_sds_zero_only: bool = False
    atz_clears_vcid: bool = False
    exit_needs_triple: bool = False
    dtmf_shielding: bool = True
    reports_cpc: Literal["always", "ste", "never"] = "always"
    answer_reply: Literal["OK", "VCON"] = "OK"
    tx_buffer_bytes: int = 4096
    uses_dle_sub: bool = False
    extra_commands: tuple[str, ...] = ()  # vendor commands answered OK (e.g. "!4886")
    busy_detect_s: float = 2.0  # busy/reorder tone before DLE b
    busy_repeat_s: float = 4.0
    dial_detect_s: float = 1.0


_USR_VSM = (VsmRow(1, "UNSIGNED PCM", 8, "u8", "(7200,8000)"), VsmRow(128, "8-BIT LINEAR", 8, "u8", "(7200,8000)"),
            VsmRow(129, "ADPCM", 4, None, "(7200,8000)"), VsmRow(130, "UNSIGNED PCM", 8, "u8", "(7200,8000)"),
            VsmRow(131, "ULAW", 8, "ulaw", "(7200,8000)"), VsmRow(132, "ALAW", 8, "alaw", "(7200,8000)"),
            VsmRow(133, "LINEAR", 16, "s16le", "(7200,8000)"))
_CX_VSM = (VsmRow(1, "UNSIGNED PCM", 8, "u8"), VsmRow(129, "IMA ADPCM", 4, None), VsmRow(130, "UNSIGNED PCM", 8, "u8"),
           VsmRow(140, "2 Bit ADPCM", 2, None), VsmRow(141, "4 Bit ADPCM", 4, None))

USR5637 = EmuProfile(
    name="usr5637", ati0="5601", ati3="U.S. Robotics 56K FAX USB V1.2.23", fmm="USR5637", vsm=_USR_VSM,
    cid_spaces=False, rx_abort_reply="dle-etx-ok", supports_ifc=True, dtmf_shielding=False,
    tx_buffer_bytes=4096)
CX93010 = EmuProfile(
    name="cx93010", ati0="56000", ati3="CX93001-EIS_V0.2002-V92", fmm=None, vsm=_CX_VSM, cid_spaces=True,
    rx_abort_reply="ok", supports_ifc=False, supports_ste=True, vsd_sds_zero_only=True, atz_clears_vcid=True,
    reports_cpc="ste", tx_buffer_bytes=2048, extra_commands=("!4886",))
ZOOM3095 = replace(CX93010, name="zoom3095", ati3="Zoom 3095 CX93001-EIS_V0.2002-V92", exit_needs_triple=True)
INTEL = EmuProfile(
    name="intel", ati0="56000", ati3="Intel 536EP Data Fax Modem", fmm=None,
    vsm=(VsmRow(0, "SIGNED PCM", 8, "s8", "(7200,8000,11025)"),
         VsmRow(128, "8-BIT LINEAR", 8, "s8", "(7200,8000,11025)"), VsmRow(140, "ALAW", 8, "alaw", "(8000)")),
    answer_reply="VCON", uses_dle_sub=True)
V253 = EmuProfile(
    name="v253", ati0="33600", ati3="Acme Voice 1.0", fmm="Acme V.253",
    vsm=(VsmRow(0, "SIGNED PCM", 8, "s8"), VsmRow(1, "UNSIGNED PCM", 8, "u8"), VsmRow(4, "G.711U", 8, "ulaw"),
         VsmRow(5, "G.711A", 8, "alaw")),
    vsm_prefix="+VSM: ", answer_reply="VCON")

EMU_PROFILES: dict[str, EmuProfile] = {p.name: p for p in (USR5637, CX93010, ZOOM3095, INTEL, V253)}


# ------------------------------------------------------------------------------------------ audio
def encode(fmt: Fmt, samples: Samples) -> bytes:
    s = np.asarray(samples, dtype=np.int16)
    if fmt == "ulaw":
        return ulaw_encode(s).tobytes()
    if fmt == "alaw":
        return alaw_encode(s).tobytes()
    if fmt == "s16le":
        return s.astype("<i2").tobytes()
    q = np.clip((s.astype(np.int32) + 128) // 256, -128, 127)
    return ((q + 128).astype(np.uint8) if fmt == "u8" else q.astype(np.int8)).tobytes()


def decode(fmt: Fmt, data: bytes) -> Samples:
    if fmt == "ulaw":
        return ulaw_decode(data)
    if fmt == "alaw":
        return alaw_decode(data)
    if fmt == "s16le":
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.int16)
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32)
    return (((a - 128) if fmt == "u8" else np.where(a >= 128, a - 256, a)) * 256).astype(np.int16)


def line_roundtrip(fmt: Fmt, samples: Samples) -> Samples:
    return decode(fmt, encode(fmt, samples))


class _Cadenced:
    """A (dual) tone switched on and off: busy 0.5/0.5, reorder 0.25/0.25, dial tone continuous."""

    def __init__(self, freqs: tuple[float, ...], level_dbm0: float, on_s: float, off_s: float) -> None:
        self.gen = ToneGenerator(freqs, level_dbm0)
        self.on = round(on_s * SAMPLE_RATE)
        self.period = self.on + round(off_s * SAMPLE_RATE)
        self.pos = 0

    def samples(self, n: int) -> Samples:
        t = self.gen.samples(n)
        if self.period > self.on:
            idx = (self.pos + np.arange(n)) % self.period
            t[idx >= self.on] = 0
        self.pos += n
        return t


# ------------------------------------------------------------------------------------------ the device
@dataclass(frozen=True)
class CallerId:
    """What the line simulator sends as caller ID (HARDWARE.md §5.5)."""

    number: str | None = None
    name: str | None = None
    date: str | None = "0117"
    time: str | None = "1330"
    number_absent: Literal["O", "P"] | None = None
    name_absent: Literal["O", "P"] | None = None
    garbage: bool = False  # add a garbled line among the fields


@dataclass
class _TxSession:
    fmt: Fmt
    played: bytearray = field(default_factory=bytearray)


Signal = Literal["cpc", "busy", "reorder", "dial", "silence", "polarity"]


class ModemDevice:
    """The emulated modem (sans-IO; every method takes or uses explicit time)."""

    def __init__(self, profile: EmuProfile | str = "usr5637", *, ring_on_s: float = 2.0, ring_off_s: float = 4.0,
                 chunk_samples: int = 160, split_dle_pairs: bool = True, cid_before_ring: bool = False,
                 silence_threshold: int = 64, line_noise_dbm0: float | None = None, hum: Hum | None = None,
                 dial_tone_s: float = 0.0, seed: int = 1) -> None:
        self.profile = EMU_PROFILES[profile] if isinstance(profile, str) else profile
        self.line_noise_dbm0 = line_noise_dbm0  # white noise on the line (None: a digitally quiet line)
        self.hum = hum
        self.dial_tone_s = dial_tone_s  # dial tone after seizing an idle line (0: none)
        self._rng = np.random.default_rng(seed)
        self._hum = hum.generator() if hum is not None else None
        self.ring_on_s = ring_on_s
        self.ring_off_s = ring_off_s
        self.chunk_samples = chunk_samples
        self.split_dle_pairs = split_dle_pairs
        self.cid_before_ring = cid_before_ring
        self.silence_threshold = silence_threshold
        self.now = 0.0
        # observation
        self.commands: list[str] = []  # every AT command line received
        self.received = bytearray()  # every byte the DTE wrote
        self.ata_count = 0
        self.tx_sessions: list[_TxSession] = []
        self.tx_underruns = 0
        self.tx_overflow_bytes = 0
        self.tx_cleared_bytes = 0
        self.dropped_events = 0  # line events while in command state (the DCE reports none there)
        self.vrx_count = 0
        self.vtx_count = 0
        self.signal_sample: int | None = None  # line sample where the last hang_up signal began
        self.event_samples: list[tuple[int, str]] = []  # (line sample, code) of DLE events sent in VRX/VTX
        self.rings_sent = 0
        self.rings_at_off_hook = 0
        self.cid_sent = 0
        self.power_on()

    # ---------------------------------------------------------------------------- power / reset
    def power_on(self) -> None:
        self.echo = True
        self.fclass = 0
        self.vcid = 0
        self.stored_vcid = 0
        self.vsm: VsmRow | None = None
        self.vsd = (128, 0)
        self.ste = 0
        self.ifc = (0, 0)
        self.off_hook = False
        self.mode: Literal["command", "vrx", "vtx"] = "command"
        self._out: list[bytes] = []
        self._line = bytearray()
        self._schedule: list[tuple[float, bytes]] = []  # (time, output) while ringing
        self._pending_cid = CallerId()
        self._reset_line()

    def _reset_line(self) -> None:
        self._t_off = 0.0
        self.line_pos = 0  # line samples generated since off-hook
        self._segments: list[Samples] = []
        self._after: _Cadenced | None = None  # what the line carries once the caller has gone
        self._dial: _Cadenced | None = None  # dial tone after seizing an idle line
        self._dial_until = 0  # line sample where that dial tone stops
        self._events: list[tuple[int, bytes]] = []  # (line sample, DLE code) in line time
        self._hung_up = False
        self._dte_pending = False
        self._dte_last_dd = False  # the last DTE pair was DLE DLE (Zoom quirk)
        self._tx_buf = bytearray()
        self._tx_playing = False
        self._tx_t0 = 0.0
        self._tx_played = 0
        self._tx_end = False
        self._tx_underrun_flagged = False
        self._voice_seen = False
        self._silence_run = 0

    # ---------------------------------------------------------------------------- DTE → DCE
    def accept_limit(self) -> int:
        """How many bytes the device takes now (back-pressure during +VTX); large otherwise."""
        if self.mode == "vtx":
            return max(0, self.profile.tx_buffer_bytes - len(self._tx_buf))
        return 1 << 16

    def receive(self, data: bytes, now: float) -> None:
        self.now = max(self.now, now)
        self.received += data
        i = 0
        while i < len(data):
            if self.mode == "command":
                b = data[i]
                i += 1
                if self.echo:
                    self._out.append(bytes((b,)))
                if b == 0x0D:
                    line = bytes(self._line).decode("latin-1")
                    self._line.clear()
                    self._command_line(line)
                elif b != 0x0A and len(self._line) < 256:
                    self._line.append(b)
            else:
                i = self._data_from_dte(data, i)

    def _data_from_dte(self, data: bytes, i: int) -> int:
        while i < len(data) and self.mode != "command":
            b = data[i]
            i += 1
            if not self._dte_pending:
                if b == DLE:
                    self._dte_pending = True
                elif self.mode == "vtx" and not self._tx_end:
                    self._tx_put(bytes((b,)))
                continue
            self._dte_pending = False
            was_dd = self._dte_last_dd
            self._dte_last_dd = b == DLE
            if b == DLE:
                if self.mode == "vtx" and not self._tx_end:
                    self._tx_put(b"\x10")
            elif b == 0x03 and self.mode == "vtx":
                if self.profile.exit_needs_triple and not was_dd:
                    continue
                self._tx_end = True
            elif b == 0x18 and self.mode == "vtx":
                self.tx_cleared_bytes += len(self._tx_buf)
                self._tx_buf.clear()
                self._tx_playing = False
            elif b == ord("!") and self.mode == "vrx":
                if self.profile.exit_needs_triple and not was_dd:
                    continue
                self._leave_vrx()
        return i

    def _tx_put(self, data: bytes) -> None:
        if not self._tx_playing:  # playout starts as soon as audio is there
            self._tx_playing = True
            self._tx_t0 = self.now
            self._tx_played = 0
            self._tx_underrun_flagged = False
        room = self.profile.tx_buffer_bytes - len(self._tx_buf)
        if len(data) > room:
            self.tx_overflow_bytes += len(data) - room
            data = data[:room]
        self._tx_buf += data

    def _leave_vrx(self) -> None:
        self.mode = "command"
        if self.profile.rx_abort_reply == "dle-etx-ok":
            self._out.append(b"\x10\x03")
        self._result("OK")

    # ---------------------------------------------------------------------------- AT commands
    def _result(self, text: str) -> None:
        self._out.append(f"\r\n{text}\r\n".encode("latin-1"))

    def _info(self, text: str) -> None:
        self._out.append(f"\r\n{text}\r\n".encode("latin-1"))

    def _command_line(self, line: str) -> None:
        k = line.upper().rfind("AT")
        if k < 0:
            return  # not a command (stray bytes, DLE exits in command state)
        cmd = line[k:].strip()
        self.commands.append(cmd)
        body = cmd[2:]
        final: str | None = "OK"
        i = 0
        while i < len(body) and final == "OK" and self.mode == "command":
            c = body[i]
            if c in "+-#!":
                j = body.find(";", i)
                j = len(body) if j < 0 else j
                final = self._extended(body[i:j].upper())
                i = j + 1
            elif c == " ":
                i += 1
            else:
                j = i + 1
                if c == "&" and j < len(body):
                    j += 1
                while j < len(body) and body[j].isdigit():
                    j += 1
                final = self._basic(body[i:j].upper())
                i = j
        if final:
            self._result(final)

    def _basic(self, tok: str) -> str | None:
        letter = tok[:2] if tok.startswith("&") else tok[:1]
        arg = tok[len(letter):]
        n = int(arg) if arg.isdigit() else 0
        if letter == "Z":
            self._reset(factory=False)
        elif letter == "&F":
            self._reset(factory=True)
        elif letter == "&W":
            self.stored_vcid = self.vcid
        elif letter == "E":
            self.echo = n == 1
        elif letter in ("V", "Q", "&D", "&C", "L", "M", "S"):
            pass
        elif letter == "H":
            self._on_hook()
        elif letter == "I":
            self._info({0: self.profile.ati0, 3: self.profile.ati3}.get(n, ""))
        elif letter == "A":
            self.ata_count += 1  # a data answer: a voice DTE must not do this
            return "NO CARRIER"
        else:
            return "ERROR"
        return "OK"

    def _reset(self, factory: bool) -> None:
        self._on_hook()
        self.echo = True
        self.fclass = 0
        self.vsm = None
        self.vsd = (128, 0)
        self.ste = 0
        self.ifc = (0, 0)
        self.vcid = 0 if factory or self.profile.atz_clears_vcid else self.stored_vcid

    def _extended(self, cmd: str) -> str | None:
        name, _, arg = cmd.partition("=")
        query = name.endswith("?")
        name = name.rstrip("?")
        p = self.profile
        try:
            if name == "+FCLASS":
                if arg == "?":
                    self._info("0,1,8")
                elif query:
                    self._info(str(self.fclass))
                elif int(arg) in (0, 1, 8):
                    self.fclass = int(arg)
                else:
                    return "ERROR"
            elif name in ("+FMI", "+FMM", "+FMR"):
                if name != "+FMM" or p.fmm is None:
                    return "ERROR"
                self._info(p.fmm)
            elif name == "+GCI":
                pass
            elif name == "+VCID":
                if query:
                    self._info(str(self.vcid))
                elif int(arg) in (0, 1, 2):
                    self.vcid = int(arg)
                else:
                    return "ERROR"
            elif name == "-SCID" and p.supports_ste:
                self.vcid = 1
            elif name == "+VSM":
                if self.fclass != 8:
                    return "ERROR"
                if arg == "?":
                    self._info("\r\n".join(f'{p.vsm_prefix}{r.cml},"{r.name}",{r.bits},0,{r.rates},0,0' for r in p.vsm))
                elif query:
                    self._info(f"{self.vsm.cml},8000" if self.vsm else "ERROR")
                else:
                    parts = [x.strip() for x in arg.split(",")]
                    row = next((r for r in p.vsm if r.cml == int(parts[0])), None)
                    if row is None or row.fmt is None or (len(parts) > 1 and int(parts[1]) != 8000):
                        return "ERROR"
                    self.vsm = row
            elif name == "+VSD":
                sds, sdi = (int(x) for x in arg.split(","))
                if p.vsd_sds_zero_only and sds != 0:
                    return "ERROR"
                self.vsd = (sds, sdi)
            elif name == "+IFC":
                if not p.supports_ifc:
                    return "ERROR"
                a, b = (int(x) for x in arg.split(","))
                self.ifc = (a, b)
            elif name == "-STE":
                if not p.supports_ste:
                    return "ERROR"
                self.ste = int(arg)
            elif name in ("+VGR", "+VGT", "+VRA", "+VRN", "+VIT", "+VNH", "+VDR", "+VEM", "+VTS"):
                pass
            elif name == "+VLS":
                if self.fclass != 8:
                    return "ERROR"
                if int(arg) == 0:
                    self._on_hook()
                else:
                    self._off_hook()
                    return p.answer_reply
            elif name in ("+VRX", "+VTX"):
                if self.fclass != 8 or not self.off_hook or self.vsm is None:
                    return "ERROR"
                self._result("CONNECT")
                self._enter(name)
                return None
            elif any(name.startswith(x) for x in p.extra_commands):
                pass
            else:
                return "ERROR"
        except ValueError:
            return "ERROR"
        return "OK"

    def _off_hook(self) -> None:
        if self.off_hook:
            return
        seized = not any(what == b"\r\nRING\r\n" for _, what in self._schedule)  # no call rings: a seizure
        self.off_hook = True
        self.rings_at_off_hook = self.rings_sent
        self._schedule.clear()  # ringing stops
        self._reset_line()
        self._t_off = self.now
        if seized and self.dial_tone_s > 0:
            self._dial = _Cadenced((350.0, 440.0), -13.0, 1.0, 0.0)
            self._dial_until = round(self.dial_tone_s * SAMPLE_RATE)
            if self.dial_tone_s >= self.profile.dial_detect_s:
                self._events.append((round(self.profile.dial_detect_s * SAMPLE_RATE), b"d"))

    def _on_hook(self) -> None:
        self.off_hook = False
        self.mode = "command"
        self._reset_line()

    def _enter(self, which: str) -> None:
        self._dte_pending = False
        self._dte_last_dd = False
        if which == "+VRX":
            self.mode = "vrx"
            self.vrx_count += 1
            self._voice_seen = False
            self._silence_run = 0
        else:
            self.mode = "vtx"
            self.vtx_count += 1
            assert self.vsm is not None and self.vsm.fmt is not None
            self.tx_sessions.append(_TxSession(self.vsm.fmt))
            self._tx_buf.clear()
            self._tx_playing = False
            self._tx_end = False
            self._tx_underrun_flagged = False

    # ---------------------------------------------------------------------------- scripting
    def ring(self, cid: CallerId | None = None, rings: int = 10, cid_before_ring: bool | None = None) -> None:
        """Ring ``rings`` times on the cadence from now, with caller ID (if ``+VCID=1`` when it is due)."""
        t0 = self.now
        period = self.ring_on_s + self.ring_off_s
        before = self.cid_before_ring if cid_before_ring is None else cid_before_ring
        first = t0 + (self.ring_off_s / 2 if cid is not None and before else 0.0)
        for k in range(rings):
            self._schedule.append((first + k * period, b"\r\nRING\r\n"))
        if cid is not None:
            when = t0 if before else first + self.ring_on_s + self.ring_off_s / 4
            self._schedule.append((when, b"CID"))
            self._pending_cid = cid
        self._schedule.sort(key=lambda x: x[0])

    def abandon(self) -> None:
        """The caller gives up while it rings."""
        self._schedule.clear()

    def play(self, samples: Samples) -> int:
        """Queue the caller's audio on the line; returns the line sample where it starts."""
        start = self.line_pos + sum(len(s) for s in self._segments)
        self._segments.append(np.asarray(samples, dtype=np.int16).copy())
        return start

    def send_dtmf(self, digits: str, on_ms: int = 100, off_ms: int = 100, shielded: bool | None = None) -> int:
        """Key presses from now (modem DSP reports them as DLE events); returns the first one's sample."""
        shield = self.profile.dtmf_shielding if shielded is None else shielded
        pos = start = self.line_pos
        on, off, rep = on_ms * 8, off_ms * 8, 70 * 8
        for d in digits:
            if shield:
                self._events.append((pos, b"/"))
                for k in range(0, on, rep):
                    self._events.append((pos + k, d.encode()))
                self._events.append((pos + on, b"~"))
            else:
                self._events.append((pos, d.encode()))
            pos += on + off
        self._events.sort(key=lambda e: e[0])
        return start

    def send_event(self, code: str, delay_s: float = 0.0) -> int:
        pos = self.line_pos + round(delay_s * SAMPLE_RATE)
        self._events.append((pos, code.encode("latin-1")))
        self._events.sort(key=lambda e: e[0])
        return pos

    def hang_up(self, signal: Signal = "cpc") -> int:
        """The far end goes away now; the line then carries the network's signal. Returns its start sample."""
        h = self.line_pos
        self.signal_sample = h
        self._segments.clear()
        self._hung_up = True
        p = self.profile
        if signal == "cpc":
            if p.reports_cpc == "always" or (p.reports_cpc == "ste" and self.ste & 4):
                self._events.append((h, b"l"))
        elif signal == "polarity":
            self._events.append((h, b"L"))
        elif signal in ("busy", "reorder"):
            on = 0.5 if signal == "busy" else 0.25
            self._after = _Cadenced((480.0, 620.0), -20.0, on, on)
            first = h + round(p.busy_detect_s * SAMPLE_RATE)
            for k in range(8):
                self._events.append((first + round(k * p.busy_repeat_s * SAMPLE_RATE), b"b"))
        elif signal == "dial":
            self._after = _Cadenced((350.0, 440.0), -17.0, 1.0, 0.0)
            self._events.append((h + round(p.dial_detect_s * SAMPLE_RATE), b"d"))
        self._events.sort(key=lambda e: e[0])
        return h

    def garbage(self, data: bytes) -> None:
        """Raw bytes on the wire now, whatever the state."""
        self._out.append(bytes(data))

    # ---------------------------------------------------------------------------- observation
    @property
    def codec(self) -> Fmt | None:
        return self.vsm.fmt if self.vsm else None

    def transmitted(self) -> Samples:
        """Everything the modem played to the line (all +VTX sessions), decoded."""
        parts = [decode(s.fmt, bytes(s.played)) for s in self.tx_sessions]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    def next_deadline(self) -> float:
        times = [t for t, _ in self._schedule[:1]]
        if self.off_hook:
            times.append(self._t_off + (self.line_pos + self.chunk_samples) / SAMPLE_RATE)
        if self.mode == "vtx":
            times.append(self.now + 0.005)
        return min(times) if times else self.now + 0.05

    # ---------------------------------------------------------------------------- DCE → DTE
    def poll(self, now: float) -> list[bytes]:
        self.now = max(self.now, now)
        while self._schedule and self._schedule[0][0] <= self.now:
            _, what = self._schedule.pop(0)
            if what == b"CID":
                if self.vcid == 1 and self.mode == "command":
                    self.cid_sent += 1
                    self._out.append(self._cid_text(self._pending_cid))
            elif self.mode == "command":
                self.rings_sent += 1
                self._out.append(what)
        if self.off_hook:
            due = int((self.now - self._t_off) * SAMPLE_RATE + 1e-6)
            while due - self.line_pos >= self.chunk_samples:
                self._line_block(self.chunk_samples)
        if self.mode == "vtx":
            self._play_tx()
        out, self._out = self._out, []
        return [c for c in out if c]

    def _cid_text(self, cid: CallerId) -> bytes:
        eq = " = " if self.profile.cid_spaces else "="
        fields = [("DATE", cid.date), ("TIME", cid.time), ("NMBR", cid.number_absent or cid.number),
                  ("NAME", cid.name_absent or cid.name)]
        lines = [f"{tag}{eq}{v}" for tag, v in fields if v is not None]
        text = "".join(f"\r\n{line}" for line in lines).encode("latin-1")
        if cid.garbage:
            text = b"\r\nNM\xffBR#\x10=\x92\x00" + text
        return text + b"\r\n"

    def _line_block(self, n: int) -> None:
        a = self.line_pos
        samples = self._line_samples(n)
        self.line_pos = a + n
        events = [(p, c) for p, c in self._events if p < a + n]
        self._events = [(p, c) for p, c in self._events if p >= a + n]
        if self.mode == "vrx":
            events += self._vsd(samples, a)
            events.sort(key=lambda e: e[0])
            self._stream_vrx(samples, a, events)
        elif self.mode == "vtx":
            for p, c in events:
                self.event_samples.append((p, c.decode("latin-1")))
                self._out.append(b"\x10" + c)
        else:
            self.dropped_events += len(events)

    def _line_samples(self, n: int) -> Samples:
        out = np.zeros(n, dtype=np.int16)
        k = 0
        while k < n and self._segments:
            seg = self._segments[0]
            take = min(n - k, len(seg))
            out[k:k + take] = seg[:take]
            k += take
            if take == len(seg):
                self._segments.pop(0)
            else:
                self._segments[0] = seg[take:]
        if k < n and self._after is not None:
            out[k:] = self._after.samples(n - k)
        if self._dial is None and self.line_noise_dbm0 is None and self._hum is None:
            return out
        mix = out.astype(np.float64)
        if self._dial is not None:
            d = min(n, self._dial_until - self.line_pos)
            if d > 0:
                mix[:d] += self._dial.gen.render(d)
            else:
                self._dial = None
        if self._hum is not None:
            mix += self._hum.render(n)
        if self.line_noise_dbm0 is not None:
            mix += self._rng.standard_normal(n) * dbm0_to_rms(self.line_noise_dbm0)
        return to_int16(mix)

    def _vsd(self, samples: Samples, a: int) -> list[tuple[int, bytes]]:
        """The modem's own silence detector (+VSD): DLE q after voice, DLE s if none since +VRX."""
        sdi = self.vsd[1]
        out: list[tuple[int, bytes]] = []
        if sdi <= 0:
            return out
        limit = sdi * SAMPLE_RATE // 10
        for k in range(0, len(samples), 160):
            block = samples[k:k + 160]
            if int(np.max(np.abs(block.astype(np.int32)))) >= self.silence_threshold:
                self._voice_seen = True
                self._silence_run = 0
                continue
            self._silence_run += len(block)
            if self._silence_run == limit:
                out.append((a + k + len(block), b"q" if self._voice_seen else b"s"))
        return out

    def _stream_vrx(self, samples: Samples, a: int, events: list[tuple[int, bytes]]) -> None:
        fmt = self.codec
        assert fmt is not None
        bps = 2 if fmt == "s16le" else 1
        data = encode(fmt, samples)
        wire = bytearray()
        prev = 0
        for p, code in events:
            off = max(0, min(p - a, len(samples))) * bps
            wire += self._shield(data[prev:off])
            wire += b"\x10" + code
            self.event_samples.append((p, code.decode("latin-1")))
            prev = off
        wire += self._shield(data[prev:])
        chunk = bytes(wire)
        k = chunk.find(b"\x10")
        if self.split_dle_pairs and 0 <= k < len(chunk) - 1:
            self._out += [chunk[:k + 1], chunk[k + 1:]]
        else:
            self._out.append(chunk)

    def _shield(self, data: bytes) -> bytes:
        w = data.replace(b"\x10", b"\x10\x10")
        return w.replace(b"\x10\x10\x10\x10", b"\x10\x1a") if self.profile.uses_dle_sub else w

    def _play_tx(self) -> None:
        assert self.vsm is not None and self.vsm.fmt is not None
        rate = SAMPLE_RATE * (2 if self.vsm.fmt == "s16le" else 1)
        sess = self.tx_sessions[-1]
        if self._tx_playing:
            due = int((self.now - self._tx_t0) * rate + 1e-6) - self._tx_played
            n = min(due, len(self._tx_buf))
            if n > 0:
                sess.played += self._tx_buf[:n]
                del self._tx_buf[:n]
                self._tx_played += n
            if due > n and not self._tx_end:
                self._tx_playing = False
                if not self._tx_underrun_flagged:
                    self._tx_underrun_flagged = True
                    self.tx_underruns += 1
                    self._out.append(b"\x10u")
        if self._tx_end and not self._tx_buf:
            self.mode = "command"
            self._result("OK")


# ------------------------------------------------------------------------------------------ pty shell
class FakeV253Modem:
    """:class:`ModemDevice` behind a pty, in real time (absolute monotonic deadlines)."""

    def __init__(self, profile: EmuProfile | str = "usr5637", *, link: str | Path | None = None,
                 clock: Callable[[], float] = time.monotonic, ring_on_s: float = 2.0, ring_off_s: float = 4.0,
                 cid_before_ring: bool = False, split_dle_pairs: bool = True,
                 line_noise_dbm0: float | None = None, hum: Hum | None = None, dial_tone_s: float = 0.0) -> None:
        self.device = ModemDevice(profile, ring_on_s=ring_on_s, ring_off_s=ring_off_s,
                                  cid_before_ring=cid_before_ring, split_dle_pairs=split_dle_pairs,
                                  line_noise_dbm0=line_noise_dbm0, hum=hum, dial_tone_s=dial_tone_s)
        self.link = Path(link) if link is not None else None
        self.clock = clock
        self.lock = threading.RLock()
        self._master = -1
        self._slave = -1
        self._pty_path = ""
        self._pending = bytearray()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.present = False
        self.device.now = clock()

    # ---------------------------------------------------------------------------- life cycle
    def start(self) -> FakeV253Modem:
        self._open_pty()
        self._thread = threading.Thread(target=self._run, name="fake-v253-modem", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self.lock:
            self._close_pty()

    def __enter__(self) -> FakeV253Modem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def path(self) -> str:
        return str(self.link) if self.link is not None else self._pty_path

    def vanish(self) -> None:
        """Unplug: close the device's side; the DTE's reads and writes fail from now on."""
        with self.lock:
            self._close_pty()
            self.device.power_on()

    def reappear(self) -> None:
        """Plug back in (re-enumerated: a new pty behind the same link), powered up from scratch."""
        with self.lock:
            self.device.power_on()
            self.device.now = self.clock()
            self._open_pty()

    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._pty_path = os.ttyname(self._slave)
        self._pending.clear()
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._pty_path)
            tmp.replace(self.link)
        self.present = True

    def _close_pty(self) -> None:
        self.present = False
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    # ---------------------------------------------------------------------------- scripting (thread-safe)
    def ring(self, cid: CallerId | None = None, rings: int = 10, cid_before_ring: bool | None = None) -> None:
        with self.lock:
            self.device.now = self.clock()
            self.device.ring(cid, rings, cid_before_ring)

    def abandon(self) -> None:
        with self.lock:
            self.device.abandon()

    def play(self, samples: Samples) -> int:
        with self.lock:
            return self.device.play(samples)

    def send_dtmf(self, digits: str, on_ms: int = 100, off_ms: int = 100, shielded: bool | None = None) -> int:
        with self.lock:
            return self.device.send_dtmf(digits, on_ms, off_ms, shielded)

    def send_event(self, code: str, delay_s: float = 0.0) -> int:
        with self.lock:
            return self.device.send_event(code, delay_s)

    def hang_up(self, signal: Signal = "cpc") -> int:
        with self.lock:
            return self.device.hang_up(signal)

    def garbage(self, data: bytes) -> None:
        with self.lock:
            self.device.garbage(data)

    def transmitted(self) -> Samples:
        with self.lock:
            return self.device.transmitted()

    def wait_until(self, predicate: Callable[[ModemDevice], bool], timeout: float) -> bool:
        """Wait (real time) until ``predicate(device)`` holds; False on timeout."""
        end = time.monotonic() + timeout
        while True:
            with self.lock:
                if predicate(self.device):
                    return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.005)

    # ---------------------------------------------------------------------------- the thread
    def _run(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                fd = self._master if self.present else -1
                limit = self.device.accept_limit()
                wait = min(0.005, max(0.0, self.device.next_deadline() - self.clock()))
            if fd < 0:
                time.sleep(0.005)
                continue
            try:
                readable, _, _ = select.select([fd] if limit > 0 else [], [], [], wait)
                data = os.read(fd, min(limit, 4096)) if readable else b""
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EIO, errno.EBADF):
                    log.warning("emulator read: %s", e)
                data = b""  # EIO: nobody has the DTE side open (between opens)
            with self.lock:
                if fd != self._master:
                    continue  # vanished meanwhile
                now = self.clock()
                if data:
                    self.device.receive(data, now)
                for chunk in self.device.poll(now):
                    self._pending += chunk
                self._write_pending(fd)

    def _write_pending(self, fd: int) -> None:
        while self._pending:
            try:
                n = os.write(fd, self._pending)
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    if len(self._pending) > 1 << 16:  # nobody reads: the modem's buffer overflows
                        del self._pending[: len(self._pending) - (1 << 16)]
                    return
                log.warning("emulator write: %s", e)
                self._pending.clear()
                return
            del self._pending[:n]
