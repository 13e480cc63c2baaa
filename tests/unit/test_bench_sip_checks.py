"""gatewayd/bench/sip.py: the recording check and the RTP capture it gives SIPp (pure parts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gatewayd.bench.sip import check_recording, write_pcap
from media import g711
from media.frame import SAMPLE_RATE
from tests.integration.sip_peers import pcap_rtp_audio


def speech(seconds: float, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * SAMPLE_RATE)) * 2000
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 3 * np.arange(len(x)) / SAMPLE_RATE)
    return (x * env).astype(np.int16)


def test_delayed_recording_is_complete_and_audible() -> None:
    ref = speech(6)
    rec = np.concatenate([np.zeros(1234, dtype=np.int16), ref, np.zeros(800, dtype=np.int16)])
    assert check_recording(rec, ref) == (True, True, 1.0)


def test_recording_that_began_late_is_complete() -> None:
    ref = speech(6)
    assert check_recording(ref[100:], ref)[0] is True


def test_a_dropped_or_inserted_frame_makes_it_incomplete() -> None:
    ref = speech(6)
    for at in (16000, 18000):  # on a segment boundary, inside a segment
        dropped = np.concatenate([ref[:at], ref[at + 160:]])
        inserted = np.concatenate([ref[:at], np.zeros(160, dtype=np.int16), ref[at:]])
        for rec in (dropped, inserted):
            complete, audible, _ = check_recording(rec, ref)
            assert (complete, audible) == (False, True), at


def test_silence_is_not_audible_nor_complete() -> None:
    ref = speech(4)
    assert check_recording(np.zeros(len(ref), dtype=np.int16), ref)[:2] == (False, False)
    assert check_recording(np.zeros(100, dtype=np.int16), ref) == (False, False, 0.0)


def test_write_pcap_is_one_continuous_pcma_stream(tmp_path: Path) -> None:
    x = speech(1.0)
    write_pcap(tmp_path / "x.pcap", x)
    assert np.array_equal(pcap_rtp_audio(tmp_path / "x.pcap"), g711.alaw_decode(g711.alaw_encode(x)))
