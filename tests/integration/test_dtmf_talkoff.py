"""Talk-off: no false digit over the generated speech and music corpus (tests/corpus/talkoff.py)."""

from __future__ import annotations

import pytest

from media.dtmf import DtmfDetector, DtmfParams
from tests.corpus import talkoff

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def corpus() -> list[talkoff.Segment]:
    return talkoff.load()


def test_corpus_is_at_least_10_minutes_of_speech_and_music(corpus: list[talkoff.Segment]) -> None:
    speech = sum(s.seconds for s in corpus if s.kind == "speech")
    music = sum(s.seconds for s in corpus if s.kind == "music")
    assert speech + music >= 600
    assert speech >= 420 and music >= 180
    assert {s.law for s in corpus} == {"ulaw", "alaw"}
    assert len({s.name.split("-")[1] for s in corpus if s.name.startswith("speech-")}) >= 10  # languages


def test_no_false_digit_over_the_whole_corpus(corpus: list[talkoff.Segment]) -> None:
    hits = talkoff.scan(corpus)
    false = {name: evs for name, evs in hits.items() if evs}
    assert false == {}, f"{sum(map(len, false.values()))} false digits: {false}"


def test_corpus_catches_a_weaker_detector(corpus: list[talkoff.Segment]) -> None:
    """The corpus has teeth: without the harmonic test, with a 2-window start and a -3 dB energy ratio
    (a plain Goertzel detector) it produces false digits."""
    weak = DtmfParams(hits_to_begin=2, harmonic_db=-100.0, energy_ratio_db=-3.0)
    false = 0
    for seg in corpus:
        det = DtmfDetector(weak)
        false += len(det.feed(seg.samples)) + len(det.flush())
    assert false >= 5
