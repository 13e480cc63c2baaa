"""Analysers for ``gatewayd analyze``: call-progress tones and caller ID found in a recording.

Each class follows the analyser protocol of ``media.analysis`` (a factory taking the analysis
options; ``key``; ``process(frame)``; ``finish(duration)`` returning a JSON-serialisable section;
``describe(result)`` returning text lines), so wiring them in is ``ANALYSERS += [ProgressAnalyser,
CallerIdAnalyser]``. Options they read, when present: ``country`` (call-progress tone plan, default
``us``) and ``cid_standard`` (``bell202``/``v23``; default: try both).

JSON sections (times in seconds from the start of the file):

``call_progress``
    ``country``; ``events[]``: ``{kind, start, detected, end}`` — ``kind`` one of dial, busy,
    congestion, ringback, sit, unobtainable; ``start`` where the tone began; ``detected`` when the
    detector decided; ``end`` where it stopped (``null`` if it lasted to the end of the file).
``caller_id``
    ``messages[]``: ``{standard, start, end, type, number, name, datetime, number_absent,
    name_absent, checksum_ok, error, raw}`` — ``type`` the message type byte (4 SDMF, 128 MDMF...),
    ``datetime`` ``MMDDHHMM`` or ``null``, ``error`` "" or checksum / truncated / malformed /
    unknown-type, ``raw`` the received bytes in hex; ``dtas[]``: ``{start, end}`` dual-tone alerting
    signals (UK/ETSI "before ring" caller ID).
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any

import numpy as np

from media.callerid import STANDARDS, CallerIdDecoder, CallerIdRecord, DtasDetector, DtasEvent, FskStandard
from media.frame import SAMPLE_RATE, AudioFrame
from media.progress import ProgressDetector, ProgressEvent

__all__ = ["CallerIdAnalyser", "ProgressAnalyser"]


def _sec(pts: int | None) -> float | None:
    return None if pts is None else round(pts / SAMPLE_RATE, 3)


class ProgressAnalyser:
    """Call-progress tones of one country's plan."""

    key = "call_progress"

    def __init__(self, options: object = None) -> None:
        self.country = str(getattr(options, "country", None) or "us")
        self._det = ProgressDetector(self.country)
        self._events: list[ProgressEvent] = []
        self._end = 0

    def process(self, frame: AudioFrame) -> None:
        self._events += self._det.process(frame)
        self._end = frame.end_pts

    def finish(self, duration: float) -> Any:
        last = self._det.flush()
        # a tone still on when the file ends is closed by the flush, at the last whole block: no end
        still_on = {e.kind for e in last if e.end_pts is not None and e.end_pts >= self._end - self._det.BLOCK}
        out: list[dict[str, Any]] = []
        open_: dict[str, Any] | None = None
        for e in self._events + last:
            if not e.ended:
                open_ = {"kind": e.kind.value, "start": _sec(e.start_pts), "detected": _sec(e.pts), "end": None}
                out.append(open_)
            elif open_ is not None and open_["kind"] == e.kind.value:
                open_["end"] = None if e in last and e.kind in still_on else _sec(e.end_pts)
                open_ = None
        return {"country": self._det.country.code, "events": out}

    def describe(self, result: Any) -> list[str]:
        ev = result["events"]
        lines = [f"call progress ({result['country']}): {len(ev)} tone(s)"]
        for e in ev:
            end = "end of file" if e["end"] is None else f"{e['end']:.3f} s"
            lines.append(f"  {e['kind']:<12} {e['start']:9.3f} s – {end}  (decided at {e['detected']:.3f} s)")
        return lines


class CallerIdAnalyser:
    """Caller-ID FSK messages (Bell 202 and/or V.23) and DT-AS alerting tones."""

    key = "caller_id"
    KEEP_FRAMES = 250  # 5 s: longer than any caller-ID burst

    def __init__(self, options: object = None) -> None:
        std = getattr(options, "cid_standard", None)
        standards = [FskStandard(std)] if std else list(FskStandard)
        self._decoders = [CallerIdDecoder(s) for s in standards]
        self._dtas = DtasDetector()
        self._records: list[CallerIdRecord] = []
        self._alerts: list[DtasEvent] = []
        self._recent: deque[AudioFrame] = deque(maxlen=self.KEEP_FRAMES)  # audio of the last burst

    def process(self, frame: AudioFrame) -> None:
        self._recent.append(frame)
        for d in self._decoders:
            self._records += [self._identify(r) for r in d.process(frame)]
        self._alerts += self._dtas.process(frame)

    def _identify(self, r: CallerIdRecord) -> CallerIdRecord:
        """Bell 202 (1200/2200 Hz) and V.23 (1300/2100 Hz) decode each other's bursts; tell them apart
        by where the burst's energy is."""
        if len(self._decoders) < 2 or r.start_pts is None or r.end_pts is None:
            return r
        parts = [f for f in self._recent if f.end_pts > r.start_pts and f.pts < r.end_pts]
        if not parts or parts[0].pts > r.start_pts:
            return r
        x = np.concatenate([f.samples for f in parts]).astype(np.float64)
        spec = np.abs(np.fft.rfft(x)) ** 2
        hz = SAMPLE_RATE / len(x)

        def band(f: float) -> float:
            return float(spec[max(0, round((f - 30) / hz)):round((f + 30) / hz) + 1].sum())

        score = {s: band(STANDARDS[s].mark_hz) + band(STANDARDS[s].space_hz) for s in FskStandard}
        return replace(r, standard=max(score, key=lambda s: score[s]).value)

    def finish(self, duration: float) -> Any:
        for d in self._decoders:
            self._records += d.flush()
        # both decoders may read the same burst: keep one reading, the one with a good checksum
        recs = sorted(self._records, key=lambda r: (r.start_pts or 0, not r.checksum_ok))
        kept: list[CallerIdRecord] = []
        for r in recs:
            if kept and _overlap(kept[-1], r):
                continue
            kept.append(r)
        return {
            "messages": [{
                "standard": r.standard, "start": _sec(r.start_pts), "end": _sec(r.end_pts), "type": r.message_type,
                "number": r.number, "name": r.name, "datetime": r.datetime.text if r.datetime else None,
                "number_absent": r.number_absent, "name_absent": r.name_absent, "checksum_ok": r.checksum_ok,
                "error": r.error, "raw": r.raw.hex()} for r in kept],
            "dtas": [{"start": _sec(a.start_pts), "end": _sec(a.end_pts)} for a in self._alerts],
        }

    def describe(self, result: Any) -> list[str]:
        msgs, alerts = result["messages"], result["dtas"]
        lines = [f"caller ID: {len(msgs)} message(s), {len(alerts)} DT-AS"]
        for a in alerts:
            lines.append(f"  DT-AS        {a['start']:9.3f} – {a['end']:9.3f} s")
        for m in msgs:
            who = m["number"] or (f"absent ({m['number_absent']})" if m["number_absent"] else "-")
            name = m["name"] or (f"absent ({m['name_absent']})" if m["name_absent"] else "")
            status = "ok" if not m["error"] else m["error"]
            lines.append(f"  {m['standard']:<8}     {m['start']:9.3f} – {m['end']:9.3f} s  type 0x{m['type']:02x}  "
                         f"{who} {name}  {m['datetime'] or ''}  [{status}]".rstrip())
        return lines


def _overlap(a: CallerIdRecord, b: CallerIdRecord) -> bool:
    if a.start_pts is None or b.start_pts is None or a.end_pts is None:
        return False
    return b.start_pts < a.end_pts
