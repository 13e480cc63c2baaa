"""media.dtmf_clip: the ETSI DTMF CLIP formats (HARDWARE.md §4) parsed, and decoded from line audio."""

from __future__ import annotations

import numpy as np
import pytest

from media.dtmf import DtmfSender
from media.dtmf_clip import DtmfClip, DtmfClipDecoder, parse_dtmf_clip
from media.frame import SAMPLE_RATE, frames


@pytest.mark.parametrize(("digits", "want"), [
    ("A5551230001C", DtmfClip(number="5551230001", raw="A5551230001C")),  # variant 1, number only
    ("A5551230001#", DtmfClip(number="5551230001", raw="A5551230001#")),  # variant 2
    ("A0123D0456B10C", DtmfClip(number="0123", redirecting="0456", raw="A0123D0456B10C")),  # redirected
    ("AB10C", DtmfClip(number_absent="P", raw="AB10C")),  # variant 1: restricted
    ("B00C", DtmfClip(number_absent="O", raw="B00C")),  # variant 1: unavailable, no A field
    ("D1#", DtmfClip(number_absent="P", raw="D1#")),  # variant 2 codes: private
    ("D2C", DtmfClip(number_absent="O", raw="D2C")),  # international (not presented)
    ("D3#", DtmfClip(number_absent="O", raw="D3#")),  # unavailable
    ("D0229876543C", DtmfClip(number="0229876543", raw="D0229876543C")),  # variant 3
    ("31415926#", DtmfClip(number="31415926", raw="31415926#")),  # variant 4: no start code
])
def test_every_format_is_read(digits: str, want: DtmfClip) -> None:
    assert parse_dtmf_clip(digits) == want


@pytest.mark.parametrize("digits", [
    "", "C", "A5551230001",  # no end code: not (yet) a message
    "AC", "A#", "DC", "D9C", "B55C", "AB99C",  # empty, unknown absence codes
    "A55*12C", "A5551B0C", "12#", "5551230001C",  # a stray symbol, a short info field, too short, no start
    "A" + "5" * 50 + "C",  # far too long for caller ID
])
def test_garbage_is_not_a_message(digits: str) -> None:
    assert parse_dtmf_clip(digits) is None


def line_audio(*parts: str | float, tone_ms: int = 70, gap_ms: int = 70) -> np.ndarray:
    """DTMF bursts as an exchange sends them (strings) with silences (seconds) in between."""
    out = [np.zeros(SAMPLE_RATE // 5, np.int16)]
    for p in parts:
        if isinstance(p, str):
            s = DtmfSender(p, tone_ms=tone_ms, gap_ms=gap_ms, level_dbm0=-10.0)
            out.append(s.read(s.total_samples))
        else:
            out.append(np.zeros(round(p * SAMPLE_RATE), np.int16))
    out.append(np.zeros(SAMPLE_RATE // 2, np.int16))
    return np.concatenate(out)


def decode(dec: DtmfClipDecoder, audio: np.ndarray) -> list[tuple[int, DtmfClip]]:
    found = []
    for f in frames(audio):
        clip = dec.process(f)
        if clip is not None:
            found.append((f.pts, clip))
    return found


def test_decoder_reports_the_message_once_its_end_code_has_sounded() -> None:
    audio = line_audio("A5551230001C")
    [(pts, clip)] = decode(DtmfClipDecoder(), audio)
    assert (clip.number, clip.number_absent) == ("5551230001", "")
    end_of_c = SAMPLE_RATE // 5 + 12 * 140 * 8 - 70 * 8  # the last burst ends here (then its gap)
    assert end_of_c <= pts <= end_of_c + 100 * 8  # reported within 100 ms of the C ending


def test_decoder_skips_digits_heard_before_the_start_code_and_reads_withheld() -> None:
    dec = DtmfClipDecoder()
    found = [c for _, c in decode(dec, line_audio("97D1C", 2.0, "5*C", 2.0, "D2#"))]
    assert found == [DtmfClip(number_absent="P", raw="D1C"), DtmfClip(number_absent="O", raw="D2#")]
    assert dec.rejected == 1  # "5*C" ended in an end code and was not a message


def test_digits_far_apart_are_not_one_message() -> None:
    dec = DtmfClipDecoder(max_gap_s=1.0)
    assert decode(dec, line_audio("A555", 1.5, "1234C")) == []  # "1234C" alone has no start code
    assert dec.rejected == 1
    dec.reset()
    assert [c.number for _, c in decode(dec, line_audio("A555", 0.5, "1234C"))] == ["5551234"]
