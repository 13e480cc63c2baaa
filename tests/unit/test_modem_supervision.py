import numpy as np
import pytest

from drivers.modem.supervision import Disconnect, SilenceSupervisor
from media.frame import AudioFrame, frames
from media.tones import tone


def test_silence_supervisor_reports_where_the_silence_began() -> None:
    sup = SilenceSupervisor(timeout_s=1.0, threshold=200.0)
    loud = tone([440.0], -20.0, 1600)  # 10 frames
    quiet = (np.random.default_rng(0).normal(0, 50, 16000)).astype(np.int16)  # mean |x| ≈ 40
    out = [sup.feed(f) for f in frames(np.concatenate([loud, quiet]))]
    decided = [(i, d) for i, d in enumerate(out) if d is not None]
    assert decided == [(10 + 50 - 1, Disconnect("silence", 1600))]  # after 50 quiet frames = 1.0 s


def test_silence_supervisor_restarts_on_voice_and_on_reset() -> None:
    sup = SilenceSupervisor(timeout_s=0.1, threshold=200.0)
    z = AudioFrame.silence
    assert [sup.feed(z(p)) for p in (0, 160, 320, 480)] == [None, None, None, None]
    assert sup.silence_start == 0
    sup.feed(AudioFrame(np.full(160, 1000, dtype=np.int16), 640))
    assert sup.silence_start is None
    sup.feed(z(800))
    sup.reset()
    assert sup.silence_start is None
    assert [sup.feed(z(p)) for p in range(960, 960 + 5 * 160, 160)][-1] == Disconnect("silence", 960)


def test_silence_supervisor_needs_a_timeout() -> None:
    with pytest.raises(ValueError):
        SilenceSupervisor(0.0)


class ScriptedDetector:
    """Stands in for media.progress.ProgressDetector (not on main yet): reports at given frames."""

    def __init__(self, script: dict[int, list[tuple[str, int, int | None]]]) -> None:
        self.script = script
        self.fed = 0

    def process(self, frame: AudioFrame) -> list["Ev"]:
        self.fed += 1
        return [Ev(k, s, e) for k, s, e in self.script.get(frame.pts, [])]


class Ev:
    def __init__(self, kind: str, start_pts: int, end_pts: int | None) -> None:
        self.kind, self.start_pts, self.end_pts = kind, start_pts, end_pts


def test_tone_supervisor_ends_on_disconnect_tones_only_and_cuts_at_the_tone_start() -> None:
    from drivers.modem.supervision import ToneSupervisor
    made: list[ScriptedDetector] = []

    def make() -> ScriptedDetector:
        made.append(ScriptedDetector({160: [("ringback", 0, None)], 320: [("busy", 0, 160)],
                                      3200: [("busy", 800, None)], 3360: [("dial", 900, None)]}))
        return made[-1]

    sup = ToneSupervisor(make)
    out = [sup.feed(AudioFrame.silence(p)) for p in range(0, 3520, 160)]
    assert [d for d in out if d is not None] == [Disconnect("busy-tone", 800)]  # not ringback, not an end event
    sup.reset()
    assert len(made) == 2 and sup.feed(AudioFrame.silence(3360)) == Disconnect("dial-tone", 900)
