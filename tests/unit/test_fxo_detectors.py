"""The FXO driver's adapters onto media.callerid and media.progress."""

import numpy as np

from drivers.emulators.fxo import CallerId, FskCallerId
from drivers.emulators.line_audio import TONE_PLANS, tone_samples
from drivers.fxo.detectors import MediaCallerIdDecoder, MediaToneSupervisor
from drivers.fxo.seams import CallerIdDecoder, CallerIdRecord, ToneHit
from media import callerid
from media.frame import frames


def feed_all(dec: CallerIdDecoder, x: np.ndarray) -> list[CallerIdRecord]:
    out = []
    for f in frames(np.concatenate([np.zeros(800, np.int16), x, np.zeros(1600, np.int16)])):
        r = dec.feed(f.samples)
        if r is not None:
            out.append(r)
    return out


def test_caller_id_decoder_adapter_bell202_and_v23() -> None:
    cid = CallerId(number="5551234567", name="ALICE", when=None)
    for standard in ("bell202", "v23"):
        dec = MediaCallerIdDecoder(standard)
        recs = feed_all(dec, FskCallerId()(CallerId(number="5551234567", name="ALICE"), standard))
        assert [(r.number, r.name, r.checksum_ok) for r in recs] == [("5551234567", "ALICE", True)]
        assert len(recs[0].when) == 8
    dec.reset()
    bad = feed_all(dec, FskCallerId(bad_checksum=True)(cid, "v23"))
    assert [(r.number, r.checksum_ok) for r in bad] == [("5551234567", False)]


def test_message_waiting_is_not_a_caller_id() -> None:
    dec = MediaCallerIdDecoder("bell202")
    mwi = callerid.modulate(callerid.Message(callerid.MessageType.SDMF_MWI, b"BBB"), "bell202")
    assert feed_all(dec, mwi) == []


def test_tone_supervisor_adapter_reports_busy_from_its_start() -> None:
    sup = MediaToneSupervisor("us")
    speech_like = (np.random.default_rng(1).standard_normal(8000) * 2000).astype(np.int16)
    busy = tone_samples(TONE_PLANS["us"]["busy"], 4.0)
    hits = [h for f in frames(np.concatenate([speech_like, busy])) if (h := sup.feed(f)) is not None]
    assert len(hits) == 1
    assert hits[0].kind == "busy" and abs(hits[0].start_pts - 8000) <= 160
    sup.reset()
    ringback = tone_samples(TONE_PLANS["us"]["ringback"], 13.0)
    later = [h for f in frames(ringback) if (h := sup.feed(f)) is not None]
    assert later == []  # ringback is not a disconnect
    assert isinstance(hits[0], ToneHit)


def test_dtmf_clip_and_either_decoder_adapters() -> None:
    from drivers.fxo.detectors import EitherCallerIdDecoder, MediaDtmfClipDecoder, caller_id_decoder
    from media.dtmf import DtmfSender

    s = DtmfSender("A5551230001C", tone_ms=70, gap_ms=70)
    clip = s.read(s.total_samples)
    assert isinstance(caller_id_decoder("dtmf"), MediaDtmfClipDecoder)
    assert [(r.number, r.number_absent) for r in feed_all(caller_id_decoder("dtmf"), clip)] == [("5551230001", "")]
    either = caller_id_decoder("v23+dtmf")
    assert isinstance(either, EitherCallerIdDecoder)
    assert [r.number for r in feed_all(either, clip)] == ["5551230001"]
    either.reset()
    fsk = FskCallerId()(CallerId(number="5559870001", name="BOB"), "v23")
    assert [(r.number, r.name) for r in feed_all(either, fsk)] == [("5559870001", "BOB")]
