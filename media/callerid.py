"""Caller ID on analog lines: FSK modem (Bell 202, V.23), SDMF/MDMF messages, DT-AS alerting tone.

Public API
----------
* :class:`Message` — one CID message: ``Message.sdmf(number, when)``, ``Message.mdmf(number=..., name=...,
  when=..., number_absent=..., name_absent=...)``, ``.encode()`` → ``type, length, payload, checksum``
  (checksum: two's complement of the mod-256 sum, so a receiver's sum over all bytes is 0).
* :func:`parse_message` ``(raw) -> CallerIdRecord`` — never raises; problems go into ``record.error``.
* :func:`modulate` ``(message, standard="bell202", ...) -> Samples`` — continuous-phase FSK with a
  fractional bit clock (1200 bit/s is 6⅔ samples a bit): channel seizure, mark, async 8N1 bytes
  (optional extra stop bits), post-amble; level, frequency error and baud error are parameters; faults:
  ``bad_checksum``, ``truncate`` (send only the first N bytes), or raw ``bytes`` for garbage.
* :class:`CallerIdDecoder` ``(standard).process(frame) -> list[CallerIdRecord]`` — streaming decoder.
* :func:`render_dtas` / :class:`DtasDetector` — the ETSI dual-tone alerting signal (2130 + 2750 Hz,
  80–110 ms) that precedes "before ring" caller ID in the UK (BT SIN 227/242) and CID on call waiting.

Standards (HARDWARE.md §4): Bell 202 mark 1200 Hz / space 2200 Hz; V.23 (ETSI EN 300 659) mark
1300 Hz / space 2100 Hz; both 1200 bit/s, 8N1, LSB first.

Decoder method
--------------
Two non-coherent correlators, one bit long, at the mark and space frequencies (one small matrix
product over a sliding window per frame) give a soft decision ``(|M|² − |S|²) / (|M|² + |S|²)`` and
the in-band power (carrier detect at ``min_level_dbm0``, −48 dBm0 by default). A UART on the soft
signal finds each start edge to a fraction of a sample, then reads the ten bit centres of the frame
from it — so the bit clock is recovered on every byte, which absorbs baud errors of a few percent and
any number of extra stop bits. A message starts at a known message-type byte after at least
``min_mark_bits`` of mark (the mark signal after seizure; seizure bytes decode as 0x55 and are
skipped); then come length, payload and checksum. A message cut short (carrier lost, or no byte for 40
bit times) is reported with ``error="truncated"``; a bad sum with ``error="checksum"``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np
import numpy.typing as npt

from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame, Samples, to_int16
from media.levels import dbm0_to_peak, dbm0_to_rms
from media.tones import ToneGenerator

log = logging.getLogger(__name__)

__all__ = [
    "STANDARDS",
    "CallerIdDecoder",
    "CallerIdRecord",
    "CidDateTime",
    "DtasDetector",
    "DtasEvent",
    "FskStandard",
    "Message",
    "MessageType",
    "Param",
    "checksum",
    "frame_bits",
    "modulate",
    "parse_message",
    "render_dtas",
]


# ------------------------------------------------------------------------------------------ standards
class FskStandard(StrEnum):
    BELL202 = "bell202"  # Telcordia GR-30 (North America)
    V23 = "v23"  # ETSI EN 300 659-1 (Europe, BT)


@dataclass(frozen=True)
class FskParams:
    mark_hz: float
    space_hz: float
    baud: float = 1200.0


STANDARDS: dict[FskStandard, FskParams] = {
    FskStandard.BELL202: FskParams(1200.0, 2200.0),
    FskStandard.V23: FskParams(1300.0, 2100.0),
}


def _std(standard: FskStandard | str) -> FskStandard:
    try:
        return FskStandard(str(standard).lower().replace(" ", "").replace(".", ""))
    except ValueError:
        raise ValueError(f"unknown caller-ID standard {standard!r}; use 'bell202' or 'v23'") from None


# ------------------------------------------------------------------------------------------ messages
class MessageType(IntEnum):
    SDMF = 0x04  # single data message: MMDDHHMM + number (or O / P)
    SDMF_MWI = 0x06  # single data message waiting indicator
    MDMF = 0x80  # multiple data message (call set-up)
    MDMF_MWI = 0x82  # message waiting
    ETSI_CHARGE = 0x86  # advice of charge
    ETSI_SMS = 0x89


class Param(IntEnum):
    DATETIME = 0x01
    NUMBER = 0x02
    DIALLED = 0x03
    NUMBER_ABSENT = 0x04  # "O" unavailable, "P" private
    REDIRECT = 0x05
    QUALIFIER = 0x06  # "L" long distance
    NAME = 0x07
    NAME_ABSENT = 0x08
    ALT_ROUTE = 0x09
    VMWI = 0x0B
    CALL_TYPE = 0x11


_KNOWN_TYPES = frozenset(int(t) for t in MessageType)
_MDMF_FORMAT = frozenset({MessageType.MDMF, MessageType.MDMF_MWI, MessageType.ETSI_CHARGE, MessageType.ETSI_SMS})


def checksum(data: bytes) -> int:
    """The byte that makes the mod-256 sum of ``data`` + checksum zero."""
    return (-sum(data)) & 0xFF


@dataclass(frozen=True)
class CidDateTime:
    """Caller-ID time stamp (no year on the wire)."""

    month: int
    day: int
    hour: int
    minute: int

    @property
    def text(self) -> str:
        return f"{self.month:02d}{self.day:02d}{self.hour:02d}{self.minute:02d}"

    @classmethod
    def parse(cls, text: str) -> CidDateTime | None:
        """``MMDDHHMM`` → value; ``None`` when it is not 8 digits of a plausible date and time."""
        if len(text) != 8 or not text.isascii() or not text.isdigit():
            return None
        mo, d, h, mi = (int(text[i:i + 2]) for i in range(0, 8, 2))
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59):
            return None
        return cls(mo, d, h, mi)

    @classmethod
    def of(cls, when: CidDateTime | _dt.datetime | str) -> CidDateTime:
        if isinstance(when, CidDateTime):
            return when
        if isinstance(when, _dt.datetime):
            return cls(when.month, when.day, when.hour, when.minute)
        v = cls.parse(when)
        if v is None:
            raise ValueError(f"caller-ID date/time must be MMDDHHMM, got {when!r}")
        return v


def _ascii(text: str, what: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} must be Latin-1 text: {text!r}") from None


@dataclass(frozen=True)
class Message:
    """A caller-ID message: ``type`` (see :class:`MessageType`) and ``payload`` (without length/checksum)."""

    type: int
    payload: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 0xFF or len(self.payload) > 0xFF:
            raise ValueError("message type is one byte and the payload at most 255 bytes")

    @classmethod
    def sdmf(cls, number: str = "", when: CidDateTime | _dt.datetime | str | None = None, *,
             absent: str = "") -> Message:
        """SDMF: ``MMDDHHMM`` then the number, or ``absent`` ("O" unavailable / "P" private)."""
        if bool(number) == bool(absent):
            raise ValueError("SDMF carries either a number or an absence reason")
        stamp = CidDateTime.of(when if when is not None else _dt.datetime.now()).text
        return cls(MessageType.SDMF, (stamp + (number or absent)).encode("ascii"))

    @classmethod
    def mdmf(cls, *, number: str | None = None, name: str | None = None,
             when: CidDateTime | _dt.datetime | str | None = None, number_absent: str | None = None,
             name_absent: str | None = None, dialled: str | None = None, call_type: int | None = None,
             extra: Sequence[tuple[int, bytes]] = ()) -> Message:
        """MDMF with the given parameters, in the usual order (date, number, name, ...)."""
        params: list[tuple[int, bytes]] = []
        if when is not None:
            params.append((Param.DATETIME, CidDateTime.of(when).text.encode("ascii")))
        if number is not None:
            params.append((Param.NUMBER, _ascii(number, "number")))
        if number_absent is not None:
            params.append((Param.NUMBER_ABSENT, _ascii(number_absent, "absence reason")))
        if dialled is not None:
            params.append((Param.DIALLED, _ascii(dialled, "dialled number")))
        if name is not None:
            params.append((Param.NAME, _ascii(name, "name")))
        if name_absent is not None:
            params.append((Param.NAME_ABSENT, _ascii(name_absent, "absence reason")))
        if call_type is not None:
            params.append((Param.CALL_TYPE, bytes([call_type])))
        params.extend(extra)
        body = b""
        for t, data in params:
            if len(data) > 0xFF:
                raise ValueError(f"MDMF parameter 0x{t:02x} longer than 255 bytes")
            body += bytes([t, len(data)]) + data
        return cls(MessageType.MDMF, body)

    def encode(self) -> bytes:
        head = bytes([self.type, len(self.payload)]) + self.payload
        return head + bytes([checksum(head)])


@dataclass(frozen=True)
class CallerIdRecord:
    """A decoded caller-ID message. ``error`` is "" when the message arrived whole with a good checksum;
    otherwise one of "checksum", "truncated", "malformed", "unknown-type", "empty". Fields decoded from a
    damaged message are best-effort."""

    message_type: int
    number: str = ""
    name: str = ""
    datetime: CidDateTime | None = None
    number_absent: str = ""
    name_absent: str = ""
    dialled: str = ""
    mwi: bool | None = None  # message waiting on/off (SDMF 0x06, MDMF VMWI)
    params: tuple[tuple[int, bytes], ...] = ()
    raw: bytes = b""
    checksum_ok: bool = False
    error: str = ""
    standard: str = ""
    start_pts: int | None = None  # where the FSK burst (carrier) began
    end_pts: int | None = None  # end of the last byte received

    @property
    def ok(self) -> bool:
        return not self.error


def parse_message(raw: bytes, *, standard: str = "", start_pts: int | None = None,
                  end_pts: int | None = None) -> CallerIdRecord:
    """Decode ``type, length, payload, checksum``. Never raises: damage is reported in the record."""
    raw = bytes(raw)
    extra = {"raw": raw, "standard": standard, "start_pts": start_pts, "end_pts": end_pts}
    if not raw:
        return CallerIdRecord(-1, error="empty", **extra)  # type: ignore[arg-type]
    mtype = raw[0]
    length = raw[1] if len(raw) > 1 else 0
    whole = len(raw) >= length + 3
    payload = raw[2:2 + length]
    cs_ok = whole and sum(raw[:length + 3]) & 0xFF == 0
    error = "" if cs_ok else ("truncated" if not whole else "checksum")
    fields: dict[str, object] = {}
    params: list[tuple[int, bytes]] = []
    if mtype == MessageType.SDMF:
        stamp = payload[:8].decode("latin-1")
        fields["datetime"] = CidDateTime.parse(stamp)
        rest = payload[8:].decode("latin-1")
        if rest in ("O", "P"):
            fields["number_absent"] = rest
        else:
            fields["number"] = rest
    elif mtype == MessageType.SDMF_MWI:
        if payload[:3] == b"\x42\x42\x42":
            fields["mwi"] = True
        elif payload[:3] == b"\x6f\x6f\x6f":
            fields["mwi"] = False
    elif mtype in _MDMF_FORMAT:
        i = 0
        while i + 2 <= len(payload):
            t, n = payload[i], payload[i + 1]
            data = payload[i + 2:i + 2 + n]
            if len(data) < n:
                if not error:
                    error = "malformed"
                break
            params.append((t, data))
            text = data.decode("latin-1")
            if t == Param.DATETIME:
                fields["datetime"] = CidDateTime.parse(text)
            elif t == Param.NUMBER:
                fields["number"] = text
            elif t == Param.NUMBER_ABSENT:
                fields["number_absent"] = text
            elif t == Param.DIALLED:
                fields["dialled"] = text
            elif t == Param.NAME:
                fields["name"] = text
            elif t == Param.NAME_ABSENT:
                fields["name_absent"] = text
            elif t == Param.VMWI and n >= 1:
                fields["mwi"] = data[0] != 0
            i += 2 + n
        if i != len(payload) and not error and whole:
            error = "malformed"
    elif not error and mtype not in _KNOWN_TYPES:
        error = "unknown-type"
    return CallerIdRecord(mtype, params=tuple(params), checksum_ok=cs_ok, error=error,
                          **fields, **extra)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ modulator
def frame_bits(data: bytes, *, seizure_bits: int = 300, mark_bits: int = 180, postamble_bits: int = 5,
               extra_stop_bits: int | Sequence[int] = 0) -> npt.NDArray[np.uint8]:
    """The bit stream of a CID burst: seizure (0101...), mark (1...), each byte as 0 b0..b7 1 (plus
    ``extra_stop_bits`` marks after it: one number for all bytes or one per byte), then post-amble."""
    bits: list[int] = [i & 1 for i in range(seizure_bits)] + [1] * mark_bits
    for k, b in enumerate(data):
        extra = extra_stop_bits if isinstance(extra_stop_bits, int) else extra_stop_bits[k % len(extra_stop_bits)]
        bits += [0, *((b >> i) & 1 for i in range(8)), 1] + [1] * extra
    bits += [1] * postamble_bits
    return np.asarray(bits, dtype=np.uint8)


def modulate(message: Message | bytes, standard: FskStandard | str = FskStandard.BELL202, *,
             level_dbm0: float = -13.5, seizure_bits: int = 300, mark_bits: int = 180, postamble_bits: int = 5,
             extra_stop_bits: int | Sequence[int] = 0, freq_error: float = 0.0, baud_error: float = 0.0,
             bad_checksum: bool = False, truncate: int | None = None, phase: float = 0.0,
             sample_rate: int = SAMPLE_RATE) -> Samples:
    """A caller-ID FSK burst as int16 samples (continuous phase, fractional bit clock).

    ``message``: a :class:`Message` (encoded with its checksum) or raw bytes sent as they are.
    ``freq_error`` / ``baud_error``: relative errors (0.01 = +1 %) applied to both tones / the bit rate.
    Faults: ``bad_checksum`` sends the checksum plus one; ``truncate=N`` sends only the first N bytes.
    Defaults follow GR-30: 300 seizure bits, 180 mark bits, −13.5 dBm0.
    """
    p = STANDARDS[_std(standard)]
    data = message.encode() if isinstance(message, Message) else bytes(message)
    if bad_checksum and data:
        data = data[:-1] + bytes([(data[-1] + 1) & 0xFF])
    if truncate is not None:
        data = data[:max(truncate, 0)]
    bits = frame_bits(data, seizure_bits=seizure_bits, mark_bits=mark_bits, postamble_bits=postamble_bits,
                      extra_stop_bits=extra_stop_bits)
    if not len(bits):
        return np.zeros(0, dtype=np.int16)
    baud = p.baud * (1 + baud_error)
    n = math.ceil(len(bits) * sample_rate / baud)
    idx = np.minimum((np.arange(n) * baud / sample_rate).astype(np.int64), len(bits) - 1)
    freq = np.where(bits[idx] == 1, p.mark_hz, p.space_hz) * (1 + freq_error)
    ph = phase + np.cumsum(2 * np.pi * freq / sample_rate) - 2 * np.pi * freq[0] / sample_rate
    return to_int16(dbm0_to_peak(level_dbm0) * np.sin(ph))


# ------------------------------------------------------------------------------------------ demodulator
@dataclass
class _Msg:
    raw: bytearray = field(default_factory=bytearray)
    start: int = 0  # pts of the carrier start
    last_end: float = 0.0  # sample index where the last byte's stop bit ends


class CallerIdDecoder:
    """Streaming caller-ID FSK decoder (see the module docstring). Never raises on bad audio.

    ``process(frame)`` returns the records completed by that frame; ``flush()`` closes a message in
    progress at the end of the signal.
    """

    WINDOW = 7  # correlator length: one bit (6⅔ samples) rounded up
    AVERAGE = 96  # samples (14 bits) over which the carrier measures are averaged
    TIMEOUT_BITS = 40

    def __init__(self, standard: FskStandard | str = FskStandard.BELL202, *, min_level_dbm0: float = -48.0,
                 min_mark_bits: int = 10) -> None:
        self.standard = _std(standard)
        self.params = STANDARDS[self.standard]
        self.bit = SAMPLE_RATE / self.params.baud
        self.min_mark_bits = min_mark_bits
        w = self.WINDOW
        k = np.arange(w)[::-1]  # sliding_window_view rows run oldest -> newest
        cols = []
        for f in (self.params.mark_hz, self.params.space_hz):
            cols += [np.cos(2 * np.pi * f * k / SAMPLE_RATE), np.sin(2 * np.pi * f * k / SAMPLE_RATE)]
        self._corr = np.ascontiguousarray(np.stack(cols, axis=1))  # (W, 4)
        self._centres = np.tile(np.arange(10) + 0.5, 3)  # bit centres, in bits from the start edge
        self._around = np.repeat([-1.0, 0.0, 1.0], 10)  # and a sample either side
        # |M|^2 of a sine of power P over W samples is P * W^2 / 2 (approximately)
        self._min_sample_power = dbm0_to_rms(min_level_dbm0) ** 2
        self._min_power = self._min_sample_power * w * w / 2
        self._widx = np.arange(FRAME_SAMPLES)[:, None] + np.arange(w)
        # correlator power / (W/2 * window energy): ~1.0 (Bell 202) or ~1.15 (V.23, whose tones are
        # closer) for clean FSK, 0.57 on average for white noise
        ref = self._ratio(modulate(b"\x55" * 8, self.standard, seizure_bits=0, mark_bits=0).astype(np.float64))
        self._min_ratio = 0.85 * ref
        self._tone_scale = w * w / 2  # correlator power / sample power of a clean tone
        self.reset()

    def _ratio(self, x: npt.NDArray[np.float64]) -> float:
        win = x[np.arange(len(x) - self.WINDOW + 1)[:, None] + np.arange(self.WINDOW)]
        yy = (win @ self._corr) ** 2
        return float(yy.sum() / ((win * win).sum() * self.WINDOW / 2))

    def reset(self) -> None:
        self._tail = np.zeros((2, self.AVERAGE))  # last AVERAGE values of the two carrier measures
        self._hist = np.zeros(self.WINDOW - 1)  # last input samples, for the sliding window
        self._d = np.zeros(0)  # soft mark(+)/space(-) decisions not yet consumed
        self._on = np.zeros(0, dtype=bool)  # carrier present per sample
        self._base = 0  # sample index of _d[0] (index 0 = first sample fed)
        self._pos = 0.0  # UART scan position (sample index)
        self._mark_from = 0.0  # where the current run of mark (after a stop bit or carrier start) began
        self._carrier_on: int | None = None  # sample index where the carrier came up
        self._last_on = -1  # last sample index with carrier
        self._msg: _Msg | None = None
        self._bitlen = self.bit  # tracked bit length (samples); back to nominal on a new carrier
        self._pts0: int | None = None  # pts of sample index 0
        self._next_pts: int | None = None

    # ------------------------------------------------------------------ streaming
    def process(self, frame: AudioFrame) -> list[CallerIdRecord]:
        if frame.sample_rate != SAMPLE_RATE:
            raise ValueError(f"CallerIdDecoder needs {SAMPLE_RATE} Hz audio, got {frame.sample_rate}")
        out: list[CallerIdRecord] = []
        if self._next_pts is not None and frame.pts != self._next_pts:
            out += self.flush()
        if self._pts0 is None:
            self._pts0 = frame.pts
        self._next_pts = frame.end_pts
        x = frame.samples.astype(np.float64)
        n = len(x)
        if not n:
            return out
        buf = np.concatenate([self._hist, x])
        self._hist = buf[-(self.WINDOW - 1):]
        end = self._base + len(self._d)
        if (self._msg is None and self._pos >= end - 1 and float(x.dot(x)) < n * self._min_sample_power
                and float(self._tail[0].sum()) < self.AVERAGE * self._min_power):
            # a quiet frame with nothing pending: no carrier can be in it
            self._tail[:, :n] = 0.0
            self._tail = np.roll(self._tail, -min(n, self.AVERAGE), axis=1)
            self._d, self._on = self._d[:0], self._on[:0]
            self._base = self._pos = end + n
            if self._carrier_on is not None and end + n - self._last_on > 2 * self.bit:
                self._carrier_on = None
            return out
        idx = self._widx if n == FRAME_SAMPLES else np.arange(n)[:, None] + np.arange(self.WINDOW)
        win = buf[idx]
        y = win @ self._corr  # (N, 4)
        yy = y * y
        m = yy[:, 0] + yy[:, 1]
        s = yy[:, 2] + yy[:, 3]
        tot = m + s
        # carrier: smoothed correlator power above the level floor, and holding (nearly) all the energy
        # of the window, as FSK does and noise or speech do not
        # (moving sums over AVERAGE samples of the correlator power and of the energy at the windows'
        # centres, the latter scaled so that the two are equal for a clean tone)
        both = np.concatenate([self._tail, np.vstack([tot, buf[3:3 + n] ** 2 * self._tone_scale])], axis=1)
        self._tail = both[:, -self.AVERAGE:]
        c = np.cumsum(both, axis=1)
        sm = (c[:, self.AVERAGE:] - c[:, :-self.AVERAGE]) * (1 / self.AVERAGE)
        # ...and the instant power within 10 dB of that average, so that the carrier drops with the signal
        on = (sm[0] >= self._min_power) & (sm[0] >= self._min_ratio * sm[1]) & (tot >= 0.1 * sm[0])
        start = self._base + len(self._d)
        if self._msg is None and self._pos >= start - 1 and not on.any():
            # speech, noise, tones: no carrier anywhere in the frame and nothing pending
            self._d, self._on = self._d[:0], self._on[:0]
            self._base = self._pos = start + n
            self._carrier(on, start)
            return out
        d = np.where(on, (m - s) / np.maximum(tot, 1e-9), 1.0)  # no carrier reads as mark (idle)
        self._d = np.concatenate([self._d, d])
        self._on = np.concatenate([self._on, on])
        self._carrier(on, start)
        self._uart(out)
        end = self._base + len(self._d)
        if self._msg is not None and (end - self._last_on > 2 * self.bit
                                      or end - self._msg.last_end > self.TIMEOUT_BITS * self.bit):
            out.append(self._close())
        # keep what the UART still needs (a whole character from the scan position)
        keep_from = int(min(self._pos, end) - 2)
        if keep_from > self._base:
            cut = keep_from - self._base
            self._d = self._d[cut:]
            self._on = self._on[cut:]
            self._base = keep_from
        return out

    def flush(self) -> list[CallerIdRecord]:
        out = [self._close()] if self._msg is not None else []
        self.reset()
        return out

    # ------------------------------------------------------------------ internals
    def _carrier(self, on: npt.NDArray[np.bool_], start: int) -> None:
        idx = np.flatnonzero(on)
        if not len(idx):
            if self._carrier_on is not None and start + len(on) - self._last_on > 2 * self.bit:
                self._carrier_on = None
            return
        first = start + int(idx[0])
        if self._carrier_on is None or first - self._last_on > 2 * self.bit:
            self._carrier_on = first
            self._bitlen = self.bit
            self._mark_from = max(self._mark_from, float(first))
        self._last_on = start + int(idx[-1])

    def _pts(self, index: float) -> int:
        # the correlator output lags its input by about half a window
        return (self._pts0 or 0) + max(0, round(index - (self.WINDOW - 1) / 2))

    def _uart(self, out: list[CallerIdRecord]) -> None:
        d = self._d
        base = self._base
        end = base + len(d)
        while True:
            bl = self._bitlen
            a = max(math.floor(self._pos) - base, 1)
            if a >= len(d):
                break
            falls = np.flatnonzero((d[a - 1:-1] >= 0) & (d[a:] < 0))
            if not len(falls):
                self._pos = float(end - 1)
                break
            i = a + int(falls[0])  # first sample below zero
            t = (i - 1) + d[i - 1] / (d[i - 1] - d[i])  # sub-sample zero crossing
            if base + t + 9.5 * bl + 2 >= end:
                self._pos = float(base + i - 1)  # wait for the rest of the character
                break
            # the middle three samples of each of the ten bits, linearly interpolated, summed
            at = t + self._centres * bl + self._around
            i0 = at.astype(np.int64)
            fr = at - i0
            soft = ((d[i0] * (1 - fr) + d[i0 + 1] * fr).reshape(3, 10).sum(axis=0)).tolist()
            if soft[0] >= 0 or soft[9] <= 0 or not (self._on[int(at[10])] and self._on[int(at[19])]):
                self._pos = float(base + i + 1)  # a glitch, or a framing error: hunt again
                self._mark_from = base + t + bl  # and the mark run starts over
                continue
            byte = sum(1 << k for k in range(8) if soft[k + 1] > 0)
            gap = (base + t - self._mark_from) / bl
            self._track_clock(d, i, t, bl)
            self._byte(byte, base + t, gap, out)
            self._mark_from = base + t + 10 * bl
            self._pos = base + t + 9.5 * bl

    def _track_clock(self, d: npt.NDArray[np.float64], i: int, t: float, bl: float) -> None:
        """Refine the bit length from where the character's transitions fell (seizure bytes have nine)."""
        seg = d[i:int(t + 9.5 * bl) + 2]
        # falling crossings only (mark to space, like the start edge, so they share its delay)
        j = np.flatnonzero((seg[:-1] >= 0) & (seg[1:] < 0))
        if not len(j):
            return
        tau = i + j + seg[j] / (seg[j] - seg[j + 1]) - t
        k = np.rint(tau / bl)
        good = (k >= 1) & (np.abs(tau - k * bl) < 0.25 * bl)
        if good.any():
            est = float(tau[good].sum() / k[good].sum())
            bl += 0.25 * (est - bl)
            self._bitlen = min(max(bl, self.bit * 0.93), self.bit * 1.07)

    def _byte(self, byte: int, at: float, gap_bits: float, out: list[CallerIdRecord]) -> None:
        msg = self._msg
        if msg is None:
            if byte in _KNOWN_TYPES and gap_bits >= self.min_mark_bits - 0.5:
                self._msg = _Msg(bytearray([byte]), self._carrier_on if self._carrier_on is not None else int(at),
                                 at + 10 * self._bitlen)
            return
        msg.raw.append(byte)
        msg.last_end = at + 10 * self._bitlen
        if len(msg.raw) >= 2 and len(msg.raw) >= msg.raw[1] + 3:
            out.append(self._close())

    def _close(self) -> CallerIdRecord:
        msg = self._msg
        assert msg is not None
        self._msg = None
        rec = parse_message(bytes(msg.raw), standard=self.standard.value, start_pts=self._pts(msg.start),
                            end_pts=self._pts(msg.last_end))
        log.debug("caller ID %s: %s", self.standard.value, rec)
        return rec


# ------------------------------------------------------------------------------------------ DT-AS
DTAS_FREQS = (2130.0, 2750.0)


def render_dtas(level_dbm0: float = -15.0, seconds: float = 0.1, *, freq_error: float = 0.0,
                twist_db: float = 0.0, sample_rate: int = SAMPLE_RATE) -> Samples:
    """The ETSI dual-tone alerting signal: 2130 + 2750 Hz (``level_dbm0`` each; 2750 Hz is
    ``twist_db`` louder), nominally 80–110 ms."""
    g = ToneGenerator([f * (1 + freq_error) for f in DTAS_FREQS], [level_dbm0, level_dbm0 + twist_db], sample_rate)
    return g.samples(round(seconds * sample_rate))


@dataclass(frozen=True, slots=True)
class DtasEvent:
    start_pts: int
    end_pts: int

    @property
    def duration_ms(self) -> float:
        return (self.end_pts - self.start_pts) * 1000 / SAMPLE_RATE


class DtasDetector:
    """Streaming DT-AS detector: reports a 2130+2750 Hz burst of ``min_ms``–``max_ms`` when it ends.

    The call-progress detector's test, per 160-sample block: at least ``min_fraction`` of the block's
    energy near the two tones (each tone's subspace spans ±1 % of its frequency, so ±1 % generator
    error is accepted), each tone holding at least ``min_share`` of their power (twist within about
    ±9.5 dB), level at least ``min_level_dbm0``. Partial blocks at either end are credited by energy,
    which puts the reported edges within a few milliseconds.
    """

    BLOCK = FRAME_SAMPLES
    SPREAD = (-0.01, 0.0, 0.01)

    def __init__(self, *, min_level_dbm0: float = -45.0, min_fraction: float = 0.7, min_share: float = 0.1,
                 min_ms: float = 60.0, max_ms: float = 150.0) -> None:
        n = np.arange(self.BLOCK)
        rows = []
        for tone in DTAS_FREQS:
            basis = np.vstack([f(2 * np.pi * tone * (1 + dv) * n / SAMPLE_RATE)
                               for dv in self.SPREAD for f in (np.cos, np.sin)])
            q, _ = np.linalg.qr(basis.T)
            rows.append(q.T)
        self._m = np.ascontiguousarray(np.vstack(rows))
        self._half = rows[0].shape[0]
        self._min_energy = self.BLOCK * dbm0_to_rms(min_level_dbm0) ** 2
        self.min_fraction, self.min_share = min_fraction, min_share
        self.min_ms, self.max_ms = min_ms, max_ms
        self.reset()

    def reset(self) -> None:
        self._tail: Samples | None = None
        self._run: list[tuple[int, float]] = []  # (pts, energy) of consecutive tone blocks
        self._before: tuple[int, float] | None = None  # the block before the run
        self._next_pts: int | None = None

    def _is_tone(self, x: npt.NDArray[np.float64]) -> tuple[bool, float]:
        e = float(x.dot(x))
        if e < self._min_energy:
            return False, e
        y = self._m.dot(x)
        yy = y * y
        p1 = float(yy[:self._half].sum())
        p2 = float(yy[self._half:].sum())
        return p1 + p2 >= self.min_fraction * e and min(p1, p2) >= self.min_share * (p1 + p2), e

    def process(self, frame: AudioFrame) -> list[DtasEvent]:
        if frame.sample_rate != SAMPLE_RATE:
            raise ValueError(f"DtasDetector needs {SAMPLE_RATE} Hz audio, got {frame.sample_rate}")
        out: list[DtasEvent] = []
        if self._next_pts is not None and frame.pts != self._next_pts:
            self.reset()
        self._next_pts = frame.end_pts
        samples, start = frame.samples, frame.pts
        if self._tail is not None:
            start -= len(self._tail)
            samples = np.concatenate([self._tail, samples])
        nb = len(samples) // self.BLOCK
        for b in range(nb):
            x = samples[b * self.BLOCK:(b + 1) * self.BLOCK].astype(np.float64)
            pts = start + b * self.BLOCK
            tone, e = self._is_tone(x)
            if tone:
                self._run.append((pts, e))
                continue
            if self._run:
                ev = self._end_run(pts, e)
                if ev is not None:
                    out.append(ev)
            self._before = (pts, e)
        rest = samples[nb * self.BLOCK:]
        self._tail = rest.copy() if len(rest) else None
        return out

    def _end_run(self, pts: int, e_after: float) -> DtasEvent | None:
        run, self._run = self._run, []
        ref = max(e for _, e in run)
        blk = self.BLOCK
        # the first and last tone blocks may be partly silence; the blocks either side partly tone
        start = run[0][0] + round((1 - min(1.0, run[0][1] / ref)) * blk)
        end = run[-1][0] + blk - (round((1 - min(1.0, run[-1][1] / ref)) * blk) if len(run) > 1 else 0)
        if self._before is not None and self._before[0] == run[0][0] - blk and start == run[0][0]:
            start -= round(min(1.0, self._before[1] / ref) * blk)
        if end == run[-1][0] + blk:
            end += round(min(1.0, e_after / ref) * blk)
        ms = (end - start) * 1000 / SAMPLE_RATE
        if self.min_ms <= ms <= self.max_ms:
            return DtasEvent(start, end)
        log.debug("dual tone of %.0f ms ignored (DT-AS is %g-%g ms)", ms, self.min_ms, self.max_ms)
        return None
