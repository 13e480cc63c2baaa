"""Voice sample formats: what ``AT+VSM=?`` offers, choosing one by name, and byte ↔ int16 conversion.

V.253 says to pick the compression method by its name string, not its number: the numbers differ
between chips (USR: 131 "ULAW", 132 "ALAW", 133 "LINEAR" 16-bit; Conexant: 1/130 "UNSIGNED PCM";
Intel: 0/128 8-bit two's complement, 140 A-law). Logical names used in configuration:

* ``ULAW``, ``ALAW`` — G.711;
* ``LINEAR16`` — 16-bit signed little-endian;
* ``LINEAR8`` — 8-bit linear, unsigned (silence 0x80) or signed (silence 0x00). Names that say
  "UNSIGNED" or "SIGNED" decide; for the others ("8-BIT LINEAR", "LINEAR", "PCM") the chipset
  profile's ``pcm8_signed`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from media.frame import Samples
from media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode


class SampleFormat(StrEnum):
    ULAW = "ulaw"
    ALAW = "alaw"
    U8 = "u8"
    S8 = "s8"
    S16LE = "s16le"


LOGICAL = {"ULAW": (SampleFormat.ULAW,), "ALAW": (SampleFormat.ALAW,), "LINEAR16": (SampleFormat.S16LE,),
           "LINEAR8": (SampleFormat.U8, SampleFormat.S8)}


@dataclass(frozen=True)
class VsmEntry:
    """One line of ``AT+VSM=?``: ``<cml>,"<name>",<bits>,<tm>,<rates>,...``."""

    cml: int
    name: str
    bits: int
    rates: tuple[int, ...]  # empty when the line did not say


@dataclass(frozen=True)
class VoiceCodec:
    vsm_id: int
    name: str
    fmt: SampleFormat
    rate: int = 8000

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.fmt is SampleFormat.S16LE else 1

    @property
    def silence_byte(self) -> int:
        return {SampleFormat.ULAW: 0xFF, SampleFormat.ALAW: 0xD5, SampleFormat.U8: 0x80}.get(self.fmt, 0x00)


_VSM = re.compile(r'^\s*(?:\+VSM:\s*)?(\d+)\s*,\s*"([^"]*)"\s*,\s*(\d+)\s*,\s*\d+\s*,?(.*)$', re.IGNORECASE)


def parse_vsm_list(lines: Iterable[str]) -> list[VsmEntry]:
    """Parse the ``AT+VSM=?`` answer; lines that do not fit are skipped."""
    out: list[VsmEntry] = []
    for line in lines:
        m = _VSM.match(line)
        if not m:
            continue
        rest = m.group(4)
        # the first field after <tm> is the rate list: "8000", "(7200,8000)", "7200-8000"
        first = re.match(r"\s*(\([^)]*\)|[\d\-]+)", rest)
        rates: list[int] = []
        if first:
            for part in re.findall(r"\d+(?:-\d+)?", first.group(1)):
                if "-" in part:
                    lo, hi = (int(x) for x in part.split("-"))
                    rates += [r for r in (7200, 8000, 11025) if lo <= r <= hi]
                else:
                    rates.append(int(part))
        out.append(VsmEntry(int(m.group(1)), m.group(2).strip(), int(m.group(3)), tuple(rates)))
    return out


def classify(entry: VsmEntry, pcm8_signed: bool) -> SampleFormat | None:
    """The sample format an entry carries, or None when we cannot use it (ADPCM, G.72x ...)."""
    n = re.sub(r"[^A-Z0-9]", "", entry.name.upper())
    if "ADPCM" in n or re.search(r"G72\d", n):
        return None
    if entry.bits == 8 and ("ULAW" in n or "MULAW" in n or n.startswith("G711U") or n == "G711MU"):
        return SampleFormat.ULAW
    if entry.bits == 8 and ("ALAW" in n or n.startswith("G711A")):
        return SampleFormat.ALAW
    if "PCM" in n or "LINEAR" in n:
        if entry.bits == 16:
            return SampleFormat.S16LE
        if entry.bits == 8:
            if "UNSIGNED" in n:
                return SampleFormat.U8
            if "SIGNED" in n:
                return SampleFormat.S8
            return SampleFormat.S8 if pcm8_signed else SampleFormat.U8
    return None


def choose_codec(entries: Sequence[VsmEntry], preference: Sequence[str], pcm8_signed: bool,
                 rate: int = 8000) -> VoiceCodec | None:
    """First entry (in the modem's order) matching the first usable logical name in ``preference``."""
    for logical in preference:
        wanted = LOGICAL.get(logical.upper())
        if not wanted:
            continue
        for e in entries:
            if e.rates and rate not in e.rates:
                continue
            fmt = classify(e, pcm8_signed)
            if fmt is not None and fmt in wanted:
                return VoiceCodec(e.cml, e.name, fmt, rate)
    return None


def decode(fmt: SampleFormat, data: bytes) -> Samples:
    """Modem bytes → int16 samples (``data`` holds whole samples)."""
    if fmt is SampleFormat.ULAW:
        return ulaw_decode(data)
    if fmt is SampleFormat.ALAW:
        return alaw_decode(data)
    if fmt is SampleFormat.U8:
        return ((np.frombuffer(data, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    if fmt is SampleFormat.S8:
        return (np.frombuffer(data, dtype=np.int8).astype(np.int16) << 8).astype(np.int16)
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def encode(fmt: SampleFormat, samples: Samples) -> bytes:
    """int16 samples → modem bytes (8-bit linear rounds to the nearest step)."""
    s = np.asarray(samples, dtype=np.int16)
    if fmt is SampleFormat.ULAW:
        return ulaw_encode(s).tobytes()
    if fmt is SampleFormat.ALAW:
        return alaw_encode(s).tobytes()
    if fmt in (SampleFormat.U8, SampleFormat.S8):
        q = np.clip((s.astype(np.int32) + 128) >> 8, -128, 127)
        packed: bytes = ((q + 128).astype(np.uint8) if fmt is SampleFormat.U8 else q.astype(np.int8)).tobytes()
        return packed
    out: bytes = s.astype("<i2").tobytes()
    return out


def roundtrip(fmt: SampleFormat, samples: Samples) -> Samples:
    """What the codec does to linear audio (for tests and emulators)."""
    return decode(fmt, encode(fmt, samples))
