"""Caller-ID text from a voice modem in formatted mode (``AT+VCID=1``), parsed as untrusted input.

Modems send ``<TAG> = <value>`` lines (the USR5637 without the spaces): ``DATE``, ``TIME``, ``NMBR``
(digits, ``P`` private, ``O`` unavailable), ``NAME``, ``MESG``; mgetty's variants ``DDN_NMBR``,
``NBR``, ``CALLER NUMBER:``, ``FM:``, ``CALLER NAME:`` and ``+CLIP: "<number>",<type>`` are accepted
too. Lines may come in any order, before the first RING (UK, France) or after it (US), with fields
missing. Nothing here raises: a line that is not caller ID returns ``None``, a field that makes no
sense is dropped.

:class:`CidCollector` gathers fields into a :class:`CidRecord`. A record is complete at the next
RING, or ``settle_s`` after its last line (callattendant's rule).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

log = logging.getLogger(__name__)

_LINE = re.compile(
    r"^\s*(DATE|TIME|NMBR|NAME|MESG|DDN_NMBR|NBR|FM|CALLER\s+NUMBER|CALLER\s+NAME|CALLER\s+ID|CID)"
    r"\s*[=:]\s*(.*?)\s*$",
    re.IGNORECASE,
)
_CLIP = re.compile(r'^\s*\+CLIP:\s*"([^"]*)"\s*(?:,\s*(\d+))?(?:\s*,[^"]*"([^"]*)")?', re.IGNORECASE)
_TAGS = {"DATE": "DATE", "TIME": "TIME", "NMBR": "NMBR", "NAME": "NAME", "MESG": "MESG",
         "DDN_NMBR": "NMBR", "NBR": "NMBR", "FM": "NMBR", "CALLER NUMBER": "NMBR", "CALLER NAME": "NAME",
         "CALLER ID": "NMBR", "CID": "NMBR"}
_MAX_VALUE = 80


@dataclass(frozen=True)
class CidRecord:
    number: str = ""  # digits (and + * #) as sent by the network
    name: str = ""
    date: str = ""  # MMDD as sent
    time: str = ""  # HHMM as sent
    number_absent: str = ""  # "P" private / "O" unavailable
    name_absent: str = ""
    messages: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.number or self.name or self.number_absent or self.name_absent)

    @property
    def caller(self) -> str:
        """The IncomingCall.caller form: the number, "anonymous" when withheld, "" when unknown."""
        if self.number:
            return self.number
        return "anonymous" if self.number_absent == "P" else ""


def _printable(s: str) -> str:
    return "".join(c for c in s if c.isprintable()).strip()[:_MAX_VALUE]


def parse_cid_line(line: str) -> tuple[str, str] | None:
    """``(tag, value)`` with the tag normalised to DATE/TIME/NMBR/NAME/MESG, or None if not caller ID."""
    try:
        m = _LINE.match(line)
        if m:
            tag = _TAGS.get(re.sub(r"\s+", " ", m.group(1).upper()), "")
            return (tag, _printable(m.group(2))) if tag else None
        m = _CLIP.match(line)
        if m:
            return ("NMBR", _printable(m.group(1)))
    except (TypeError, ValueError):  # never let a line from the wire escape as an exception
        log.debug("unparseable caller-ID line %r", line)
    return None


def is_cid_line(line: str) -> bool:
    return parse_cid_line(line) is not None


def apply_field(rec: CidRecord, tag: str, value: str) -> CidRecord:
    """Fold one field into a record; nonsense values are dropped, never raised."""
    v = value.strip()
    up = v.upper()
    if tag == "NMBR":
        if up in ("P", "O"):
            return replace(rec, number="", number_absent=up)
        digits = "".join(c for c in v if c.isdigit() or c in "+*#")
        if not any(c.isdigit() for c in digits):
            log.debug("caller-ID number without digits: %r", v)
            return rec
        return replace(rec, number=digits[:32], number_absent="")
    if tag == "NAME":
        if up in ("P", "O"):
            return replace(rec, name="", name_absent=up)
        return replace(rec, name=v) if v else rec
    if tag == "DATE":
        return replace(rec, date=v) if re.fullmatch(r"\d{4}", v) else rec
    if tag == "TIME":
        return replace(rec, time=v) if re.fullmatch(r"\d{4}", v) else rec
    if tag == "MESG":
        return replace(rec, messages=(*rec.messages, v)[:8])
    return rec


class CidCollector:
    """Gather caller-ID fields between rings (sans-IO: explicit time)."""

    def __init__(self, settle_s: float = 0.6) -> None:
        self.settle_s = settle_s
        self._rec: CidRecord | None = None
        self._last = 0.0

    @property
    def pending(self) -> bool:
        return self._rec is not None

    def add(self, tag: str, value: str, now: float) -> None:
        self._rec = apply_field(self._rec or CidRecord(), tag, value)
        self._last = now

    def flush(self) -> CidRecord | None:
        """Complete the record now (a RING arrived): the record, or None if nothing usable came."""
        rec, self._rec = self._rec, None
        return None if rec is None or rec.empty else rec

    def poll(self, now: float) -> CidRecord | None:
        if self._rec is not None and now - self._last >= self.settle_s:
            return self.flush()
        return None

    def deadline(self) -> float | None:
        return self._last + self.settle_s if self._rec is not None else None

    def clear(self) -> None:
        self._rec = None
