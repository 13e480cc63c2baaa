"""The driver's detectors built from ``media/``: caller ID (``media.callerid`` FSK, ``media.dtmf_clip``
DTMF CLIP) and disconnect tones
(``media.progress``), adapted to the small protocols in :mod:`drivers.fxo.seams`.

These are :class:`~drivers.fxo.line.FxoLine`'s defaults; tests and other boards may pass their own.
"""

from __future__ import annotations

from collections.abc import Mapping

from drivers.fxo.seams import CallerIdRecord, ToneHit
from media import callerid, progress
from media.dtmf_clip import DtmfClipDecoder
from media.frame import AudioFrame, Samples

# detector kind → the ToneHit kind (RemoteHangup.reason is "<kind>-tone"), as the modem line does;
# ringback and SIT do not mean that the caller has gone
TONE_KINDS: Mapping[str, str] = {"busy": "busy", "congestion": "reorder", "dial": "dial", "unobtainable": "dial"}

_CALL_SETUP = (callerid.MessageType.SDMF, callerid.MessageType.MDMF)


class MediaCallerIdDecoder:
    """``media.callerid.CallerIdDecoder`` fed on-hook audio; only call set-up messages count
    (a message-waiting indication between rings is not the caller's ID)."""

    def __init__(self, standard: str) -> None:
        self.standard = standard
        self._dec = callerid.CallerIdDecoder(standard)
        self._pts = 0

    def reset(self) -> None:
        self._dec.reset()
        self._pts = 0

    def feed(self, samples: Samples) -> CallerIdRecord | None:
        records = self._dec.process(AudioFrame(samples, self._pts))
        self._pts += len(samples)
        for r in records:
            if r.message_type in _CALL_SETUP:
                return CallerIdRecord(number=r.number, name=r.name, number_absent=r.number_absent,
                                      name_absent=r.name_absent, when=r.datetime.text if r.datetime else "",
                                      checksum_ok=r.ok)
        return None


class MediaDtmfClipDecoder:
    """``media.dtmf_clip.DtmfClipDecoder`` fed on-hook audio (ETSI DTMF CLIP)."""

    def __init__(self) -> None:
        self._dec = DtmfClipDecoder()
        self._pts = 0

    def reset(self) -> None:
        self._dec.reset()
        self._pts = 0

    def feed(self, samples: Samples) -> CallerIdRecord | None:
        clip = self._dec.process(AudioFrame(samples, self._pts))
        self._pts += len(samples)
        if clip is None:
            return None
        return CallerIdRecord(number=clip.number, number_absent=clip.number_absent)


class EitherCallerIdDecoder:
    """Several decoders on the same audio: the first message any of them finds (FSK or DTMF CLIP)."""

    def __init__(self, *decoders: MediaCallerIdDecoder | MediaDtmfClipDecoder) -> None:
        self.decoders = decoders

    def reset(self) -> None:
        for d in self.decoders:
            d.reset()

    def feed(self, samples: Samples) -> CallerIdRecord | None:
        found = None
        for d in self.decoders:
            record = d.feed(samples)
            found = found or record
        return found


class MediaToneSupervisor:
    """``media.progress.ProgressDetector`` on an answered call: the first busy / reorder / dial tone."""

    def __init__(self, country: str) -> None:
        self.country = country
        self._det = progress.ProgressDetector(country)

    def reset(self) -> None:
        self._det = progress.ProgressDetector(self.country)  # no cadence history across calls

    def feed(self, frame: AudioFrame) -> ToneHit | None:
        for ev in self._det.process(frame):
            kind = TONE_KINDS.get(str(ev.kind))
            if kind is not None and ev.end_pts is None:
                return ToneHit(kind, ev.start_pts)
        return None


def caller_id_decoder(standard: str) -> MediaCallerIdDecoder | MediaDtmfClipDecoder | EitherCallerIdDecoder:
    """``standard``: "bell202", "v23", "dtmf", or "bell202+dtmf" / "v23+dtmf" (both decoders)."""
    if standard == "dtmf":
        return MediaDtmfClipDecoder()
    fsk, _, dtmf = standard.partition("+")
    if dtmf:
        return EitherCallerIdDecoder(MediaCallerIdDecoder(fsk), MediaDtmfClipDecoder())
    return MediaCallerIdDecoder(standard)


def tone_supervisor(country: str) -> MediaToneSupervisor:
    return MediaToneSupervisor(country)
