"""The per-leg media pipeline on the real worker thread, fed like a device would feed it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from gatewayd.runtime.legmedia import LegMedia
from gatewayd.runtime.ops import CollectOp, CollectSpec, PauseOp, Playback, ReceiveDigitsOp, RecordOp, RecordSpec
from gatewayd.runtime.worker import Activity, MediaWorker
from media.frame import FRAME_SAMPLES, AudioFrame, Samples


@dataclass
class FakeDigit:
    digit: str
    start_pts: int
    end_pts: int | None


class ScriptedDetector:
    """Stands in for the in-band DTMF detector: reports given digits when a frame reaches a pts."""

    def __init__(self, script: dict[int, FakeDigit]) -> None:
        self.script = script

    def process(self, frame: AudioFrame) -> list[FakeDigit]:
        return [d for pts, d in self.script.items() if frame.pts <= pts < frame.end_pts]


class ListSink:
    def __init__(self) -> None:
        self.chunks: list[Samples] = []
        self.kept: int | None = None

    def write(self, samples: Samples) -> None:
        self.chunks.append(samples.copy())

    def finish(self, keep_samples: int) -> None:
        self.kept = keep_samples

    @property
    def audio(self) -> Samples:
        a = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return a[: self.kept] if self.kept is not None else a


@pytest.fixture
def rt() -> Iterator[tuple[MediaWorker, Activity]]:
    act = Activity()
    w = MediaWorker(act)
    w.start()
    yield w, act
    w.stop()


def ramp_frames(n: int, start: int = 0) -> list[AudioFrame]:
    return [AudioFrame(np.full(FRAME_SAMPLES, 1000 + i, dtype=np.int16), start + i * FRAME_SAMPLES) for i in range(n)]


def feed(leg: LegMedia, act: Activity, frames: list[AudioFrame], until: Any = None) -> int:
    """Push frames one at a time, waiting for the pipeline to settle; stop early when ``until()``."""
    for i, f in enumerate(frames):
        leg.push_rx(f)
        assert act.wait_idle(5)
        if until is not None and until():
            return i + 1
    return len(frames)


def test_pause_counts_samples_not_time(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    leg = LegMedia("a", w)
    results: list[Any] = []
    leg.start_op(PauseOp(4000, results.append))  # 0.5 s
    n = feed(leg, act, ramp_frames(100), until=lambda: bool(results))
    assert n == 25 and results == [{"reason": "elapsed"}]


def test_record_stops_at_duration_exactly(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    leg, sink, res = LegMedia("a", w), ListSink(), []
    leg.start_op(RecordOp(RecordSpec(max_samples=1000, terminators="#"), sink, res.append))
    feed(leg, act, ramp_frames(20))
    assert res == [{"reason": "duration", "terminator": None, "samples": 1000}]
    assert len(sink.audio) == 1000 and sink.kept == 1000
    assert sink.audio[0] == 1000 and sink.audio[999] == 1000 + 999 // FRAME_SAMPLES


def test_record_terminator_cuts_the_tone_from_its_start(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    # the '#' tone starts at pts 3200 (0.4 s into the recording) and is detected 40 ms later
    det = ScriptedDetector({3520: FakeDigit("#", 3200, None)})
    leg, sink, res = LegMedia("a", w, detector=det), ListSink(), []
    leg.start_op(RecordOp(RecordSpec(max_samples=80000, terminators="#*"), sink, res.append))
    feed(leg, act, ramp_frames(50))
    assert res == [{"reason": "terminator", "terminator": "#", "samples": 3200}]
    assert len(sink.audio) == 3200


def test_record_ignores_non_terminator_digits(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    det = ScriptedDetector({800: FakeDigit("5", 640, None)})
    leg, sink, res = LegMedia("a", w, detector=det), ListSink(), []
    leg.start_op(RecordOp(RecordSpec(max_samples=1600, terminators="#"), sink, res.append))
    feed(leg, act, ramp_frames(20))
    assert res[0]["reason"] == "duration"


def test_record_silence_counts_consecutive_silent_frames(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    loud = [AudioFrame(np.full(FRAME_SAMPLES, 500, np.int16), i * FRAME_SAMPLES) for i in range(10)]
    # 0.3 s quiet (resets), a loud frame, then 1 s quiet: stops after exactly 1 s of silence

    def quiet(start: int, n: int) -> list[AudioFrame]:
        return [AudioFrame(np.full(FRAME_SAMPLES, 50, np.int16), (start + i) * FRAME_SAMPLES) for i in range(n)]

    blip = AudioFrame(np.full(FRAME_SAMPLES, 500, np.int16), 25 * FRAME_SAMPLES)
    frames = loud + quiet(10, 15) + [blip] + quiet(26, 80)
    leg, sink, res = LegMedia("a", w), ListSink(), []
    leg.start_op(RecordOp(RecordSpec(max_samples=10**6, terminators="#", silence_threshold=200,
                                     silence_samples=8000), sink, res.append))
    feed(leg, act, frames)
    assert res == [{"reason": "silence", "terminator": None, "samples": (26 + 50) * FRAME_SAMPLES}]


def test_hangup_mid_recording_keeps_audio_up_to_the_disconnect_signal(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    leg, sink, res = LegMedia("a", w), ListSink(), []
    leg.start_op(RecordOp(RecordSpec(max_samples=10**6, terminators="#"), sink, res.append))
    feed(leg, act, ramp_frames(30))
    leg.end("hangup", cut_pts=20 * FRAME_SAMPLES + 40)
    assert act.wait_idle(5)
    assert res == [{"reason": "hangup", "terminator": None, "samples": 20 * FRAME_SAMPLES + 40}]
    assert len(sink.audio) == 3240


def test_out_of_band_and_inband_digits_are_one_key_press(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    det = ScriptedDetector({1000: FakeDigit("7", 700, None), 4000: FakeDigit("7", 3700, None)})
    seen: list[str] = []
    leg = LegMedia("a", w, detector=det, on_digit=lambda d: seen.append(f"{d.digit}/{d.source}"))
    leg.inject_digit("7", 680, None, "rfc4733")  # out of band first...
    leg.inject_digit("8", 2000, None, "rfc4733")
    feed(leg, act, ramp_frames(10))  # ...then the in-band detector reports the same press at 700
    feed(leg, act, ramp_frames(20, start=10 * FRAME_SAMPLES))  # in-band 7 again at 3700: a new press
    leg.inject_digit("7", 3690, None, "rfc4733")  # and its out-of-band copy, late
    leg.inject_digit("7", 5000, None, "rfc4733")  # a third press seen only out of band
    assert act.wait_idle(5)
    assert seen == ["7/rfc4733", "8/rfc4733", "7/inband", "7/rfc4733"]


def test_collect_digits_terminator_timeout_and_validation(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    leg, res = LegMedia("a", w), []
    leg.start_op(CollectOp(CollectSpec(min_digits=2, max_digits=4, terminators="#", first_digit_timeout=8000,
                                       inter_digit_timeout=1600, regex=r"1\d+"), res.append))
    for d, pts in (("1", 100), ("2", 900), ("#", 1700)):
        leg.inject_digit(d, pts, None, "rfc4733")
    assert act.wait_idle(5)
    assert res == [{"digits": "12", "reason": "terminator", "terminator": "#", "valid": True}]
    res.clear()
    leg.start_op(CollectOp(CollectSpec(min_digits=2, inter_digit_timeout=1600), res.append))
    leg.inject_digit("5", 100, None, "rfc4733")
    n = feed(leg, act, ramp_frames(100), until=lambda: bool(res))
    assert n == 10 and res == [{"digits": "5", "reason": "timeout", "terminator": None, "valid": False}]


def test_receive_digits_matches_in_background(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    leg, matches = LegMedia("a", w), []
    leg.start_op(ReceiveDigitsOp(r"\d{2}#", inter_digit=8000, flush=4000, on_match=matches.append,
                                 done=lambda r: None))
    for d in "12#":
        leg.inject_digit(d, None, None, "rfc4733")
    leg.inject_digit("9", None, None, "rfc4733")
    feed(leg, act, ramp_frames(30))  # 0.6 s > flush: the lone 9 is discarded
    for d in "34#":
        leg.inject_digit(d, None, None, "rfc4733")
    assert act.wait_idle(5)
    assert matches == ["12#", "34#"]


def test_playback_is_pulled_by_the_driver_and_reports_its_end(rt: tuple[MediaWorker, Activity]) -> None:
    w, _ = rt
    leg, res = LegMedia("a", w), []
    prompt = np.arange(400, dtype=np.int16)
    leg.play(Playback(prompt, res.append, repeat=2))
    assert leg.tx_active
    out = np.concatenate([leg.pull_tx(i * FRAME_SAMPLES) for i in range(6)])
    np.testing.assert_array_equal(out[:800], np.concatenate([prompt, prompt]))
    assert not out[800:].any()
    assert res == [{"reason": "end", "played": 800}]
    assert not leg.tx_active


def test_playback_terminator_stops_at_next_frame(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    leg, res = LegMedia("a", w), []
    leg.play(Playback(np.ones(8000, np.int16), res.append), terminators="#")
    assert act.wait_idle(5)
    leg.pull_tx(0)
    leg.inject_digit("#", None, None, "rfc4733")
    assert act.wait_idle(5)
    assert not leg.pull_tx(160).any()
    assert res == [{"reason": "terminator:#", "played": 160}]


def test_bridge_carries_each_legs_audio_to_the_other(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    a, b = LegMedia("a", w), LegMedia("b", w)
    a.bridge(b)
    assert act.wait_idle(5)
    got_b, got_a = [], []
    for i in range(10):
        a.push_rx(AudioFrame(np.full(160, i + 1, np.int16), i * 160))
        b.push_rx(AudioFrame(np.full(160, -(i + 1), np.int16), i * 160))
        assert act.wait_idle(5)
        got_b.append(int(b.pull_tx(i * 160)[0]))
        got_a.append(int(a.pull_tx(i * 160)[0]))
    assert got_b == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]  # one frame of prefill, then in order
    assert got_a == [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]


class HalvingSuppressor:
    def __init__(self) -> None:
        self.enabled = False

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled

    def process(self, frame: Samples) -> Samples:
        return (frame // 2).astype(np.int16) if self.enabled else frame


def test_voicefocus_applies_to_what_is_recorded_from_the_next_frame(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt
    leg, sink = LegMedia("a", w, suppressor_factory=HalvingSuppressor), ListSink()
    leg.start_op(RecordOp(RecordSpec(max_samples=10**6, terminators="#"), sink, lambda r: None))
    frames = [AudioFrame(np.full(160, 1000, np.int16), i * 160) for i in range(6)]
    feed(leg, act, frames[:2])
    leg.set_voicefocus(True)
    feed(leg, act, frames[2:4])
    leg.set_voicefocus(False)
    feed(leg, act, frames[4:])
    assert [int(c[0]) for c in sink.chunks] == [1000, 1000, 500, 500, 1000, 1000]


def test_a_failing_operation_does_not_stop_the_worker(rt: tuple[MediaWorker, Activity]) -> None:
    w, act = rt

    class Boom(PauseOp):
        def on_rx(self, frame: AudioFrame) -> None:
            raise RuntimeError("bug")

    leg, res = LegMedia("a", w), []
    leg.start_op(Boom(160, res.append))
    feed(leg, act, ramp_frames(2))
    assert w.errors >= 1 and w.alive
    leg2, res2 = LegMedia("b", w), []
    leg2.start_op(PauseOp(160, res2.append))
    feed(leg2, act, ramp_frames(1))
    assert res2 == [{"reason": "elapsed"}]
