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
