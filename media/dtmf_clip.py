"""DTMF CLIP: caller ID sent as DTMF digits before the first ring (ETSI EN 300 659-1 annex; HARDWARE.md §4).

Formats (a start code, the fields, an end code ``C``; variant 2 ends with ``#``):

* ``A<number>C`` or ``A<number>#``; variant 1 adds ``D<redirecting number>`` and ``B<two-digit info>``
  after the number: ``B00`` number unavailable, ``B10`` restricted (private), with no number;
* ``D<code>C`` / ``D<code>#``: the number is absent, code ``1`` private, ``2`` international (not
  presented), ``3`` unavailable;
* ``D<number>C`` (variant 3, Taiwan, Kuwait): a number of two or more digits after ``D``;
* ``<number>#`` (variant 4, DK, NL): no start code.

:func:`parse_dtmf_clip` reads a whole digit string; :class:`DtmfClipDecoder` runs
:class:`media.dtmf.DtmfDetector` on a stream and reports a message once its end code has sounded.
Digits more than ``max_gap_s`` apart do not belong to one message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from media.dtmf import DtmfDetector
from media.frame import SAMPLE_RATE, AudioFrame

log = logging.getLogger(__name__)

END_CODES = "C#"
MAX_DIGITS = 40  # longer runs are not caller ID
_VARIANT1 = re.compile(r"A(?P<number>\d*)(?:D(?P<redirecting>\d*))?(?:B(?P<info>\d\d))?")
_INFO_ABSENT = {"00": "O", "10": "P"}
_D_CODES = {"1": "P", "2": "O", "3": "O"}


@dataclass(frozen=True)
class DtmfClip:
    """A DTMF caller-ID message. ``number_absent``: "O" unavailable, "P" private, "" a number was sent."""

    number: str = ""
    number_absent: str = ""
    redirecting: str = ""
    raw: str = ""


def parse_dtmf_clip(digits: str) -> DtmfClip | None:
    """The message in ``digits`` (start code through end code), or None if it is not one."""
    if len(digits) < 2 or digits[-1] not in END_CODES or len(digits) > MAX_DIGITS:
        return None
    body = digits[:-1]
    head, rest = body[0], body[1:]
    if head == "A":
        m = _VARIANT1.fullmatch(body)
        if m is None:
            return None
        number, info = m["number"], m["info"]
        if number:
            return DtmfClip(number=number, redirecting=m["redirecting"] or "", raw=digits)
        absent = _INFO_ABSENT.get(info or "")
        return DtmfClip(number_absent=absent, redirecting=m["redirecting"] or "", raw=digits) if absent else None
    if head == "B":
        absent = _INFO_ABSENT.get(rest)
        return DtmfClip(number_absent=absent, raw=digits) if absent else None
    if head == "D" and rest.isdigit():
        if len(rest) == 1:
            absent = _D_CODES.get(rest)
            return DtmfClip(number_absent=absent, raw=digits) if absent else None
        return DtmfClip(number=rest, raw=digits)
    if body.isdigit() and digits[-1] == "#" and len(body) >= 3:
        return DtmfClip(number=body, raw=digits)
    return None


class DtmfClipDecoder:
    """Streaming DTMF CLIP receiver: ``process(frame)`` returns a message once one has ended."""

    def __init__(self, *, max_gap_s: float = 1.0) -> None:
        self.max_gap = round(max_gap_s * SAMPLE_RATE)
        self._det = DtmfDetector()
        self._digits = ""
        self._last_end = 0
        self.rejected = 0  # digit strings ended by an end code that were not a message

    def reset(self) -> None:
        self._det = DtmfDetector()
        self._digits = ""

    def process(self, frame: AudioFrame) -> DtmfClip | None:
        found: DtmfClip | None = None
        for ev in self._det.process(frame):
            if self._digits and ev.start - self._last_end > self.max_gap:
                self._digits = ""
            self._last_end = ev.end
            self._digits = (self._digits + ev.digit)[-MAX_DIGITS:]
            if ev.digit not in END_CODES:
                continue
            clip = self._message()
            if clip is None:
                self.rejected += 1
                log.debug("DTMF digits %r are not a caller-ID message", self._digits)
            self._digits = ""
            if clip is not None and found is None:
                found = clip
        return found

    def _message(self) -> DtmfClip | None:
        """The message ending the digit run, from its earliest point that parses (digits heard before a
        start code, e.g. the tail of something else, are dropped)."""
        s = self._digits
        for i in range(len(s) - 1):
            clip = parse_dtmf_clip(s[i:])
            if clip is not None:
                return clip
        return None
