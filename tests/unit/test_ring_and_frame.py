import numpy as np
import pytest

from media.frame import FRAME_SAMPLES, AudioFrame, frames, seconds_to_samples
from media.ring import FrameRing


def test_frames_carry_pts_in_samples() -> None:
    fs = frames(np.arange(400, dtype=np.int16), start_pts=1000)
    assert [f.pts for f in fs] == [1000, 1160, 1320]
    assert fs[-1].duration_samples == FRAME_SAMPLES
    assert fs[-1].samples[80:].tolist() == [0] * 80  # padded
    assert fs[1].end_pts == 1320
    assert seconds_to_samples(1.5) == 12000


def test_frame_rejects_wrong_dtype() -> None:
    with pytest.raises(ValueError):
        AudioFrame(np.zeros(160, dtype=np.float32), 0)  # type: ignore[arg-type]


def test_ring_drops_oldest_and_counts() -> None:
    r: FrameRing[int] = FrameRing(3)
    for i in range(5):
        r.put(i)
    assert r.dropped == 2
    assert [r.get(), r.get(), r.get()] == [2, 3, 4]
    assert r.get(count_underrun=True) is None
    assert r.underruns == 1
