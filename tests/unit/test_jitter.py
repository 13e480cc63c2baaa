"""media/jitter.py: the whole state is asserted after each step (as aiortc's jitterbuffer tests do)."""

from __future__ import annotations

import numpy as np
import pytest

from media.frame import AudioFrame
from media.jitter import Bridge, JitterBuffer, JitterState


def f(v: int) -> np.ndarray:
    return np.full(160, v, dtype=np.int16)


def val(samples: np.ndarray) -> int:
    assert samples.shape == (160,) and samples.dtype == np.int16
    assert np.all(samples == samples[0])
    return int(samples[0])


def S(depth: int, target: int, primed: bool, window_pos: int = 0, window_min: int = -1, calm: int = 0, put: int = 0,
      got: int = 0, dropped: int = 0, inserted: int = 0, underruns: int = 0) -> JitterState:
    return JitterState(depth, target, primed, window_pos, window_min, calm, put, got, dropped, inserted, underruns)


def test_priming_then_steady_flow() -> None:
    jb = JitterBuffer(min_target=2, max_target=4, capacity=8, window=4, relax_windows=3)
    assert jb.state() == S(0, 2, False)
    assert val(jb.get()) == 0  # nothing buffered: silence
    assert jb.state() == S(0, 2, False, got=1, inserted=1)
    jb.put(f(1))
    assert jb.state() == S(1, 2, False, put=1, got=1, inserted=1)
    assert val(jb.get()) == 0  # still below target
    assert jb.state() == S(1, 2, False, put=1, got=2, inserted=2)
    jb.put(f(2))
    assert jb.state() == S(2, 2, False, put=2, got=2, inserted=2)
    assert val(jb.get()) == 1  # primed: frames come out in order
    assert jb.state() == S(1, 2, True, window_pos=1, window_min=1, put=2, got=3, inserted=2)
    jb.put(f(3))
    assert val(jb.get()) == 2
    assert jb.state() == S(1, 2, True, window_pos=2, window_min=1, put=3, got=4, inserted=2)


def test_underrun_inserts_silence_raises_target_and_reprimes() -> None:
    jb = JitterBuffer(min_target=1, max_target=3, capacity=8, window=100, relax_windows=3)
    jb.put(f(1))
    assert val(jb.get()) == 1
    assert jb.state() == S(0, 1, True, window_pos=1, window_min=0, put=1, got=1)
    assert val(jb.get()) == 0  # producer late: one frame inserted
    assert jb.state() == S(0, 2, False, put=1, got=2, inserted=1, underruns=1)
    jb.put(f(2))
    assert val(jb.get()) == 0  # priming to the new target of 2
    assert jb.state() == S(1, 2, False, put=2, got=3, inserted=2, underruns=1)
    jb.put(f(3))
    assert val(jb.get()) == 2
    assert jb.state() == S(1, 2, True, window_pos=1, window_min=1, put=3, got=4, inserted=2, underruns=1)


def test_target_is_capped_at_max_target() -> None:
    jb = JitterBuffer(min_target=1, max_target=2, capacity=8, window=100, relax_windows=3)
    for i in range(3):
        jb.put(f(10 + i))
        while val(jb.get()) == 0:
            jb.put(f(20 + i))
        while len(jb._q):
            jb.get()
        jb.get()  # underrun
    st = jb.state()
    assert st.target == 2 and st.underruns == 3 and not st.primed


def test_producer_faster_drops_one_frame_per_window() -> None:
    jb = JitterBuffer(min_target=2, max_target=4, capacity=16, window=3, relax_windows=100)
    for v in (1, 2, 3, 4):  # one frame more than the target
        jb.put(f(v))
    assert val(jb.get()) == 1
    assert jb.state() == S(3, 2, True, window_pos=1, window_min=3, put=4, got=1)
    jb.put(f(5))
    assert val(jb.get()) == 2
    assert jb.state() == S(3, 2, True, window_pos=2, window_min=3, put=5, got=2)
    jb.put(f(6))
    # end of window: never fewer than 3 > target 2 frames left -> frame 3 is dropped, 4 is played
    assert val(jb.get()) == 4
    assert jb.state() == S(2, 2, True, window_pos=0, window_min=-1, calm=1, put=6, got=3, dropped=1)
    jb.put(f(7))
    assert val(jb.get()) == 5
    assert jb.state() == S(2, 2, True, window_pos=1, window_min=2, calm=1, put=7, got=4, dropped=1)
    jb.put(f(8))
    assert val(jb.get()) == 6
    jb.put(f(9))
    # 2 frames left = target: nothing more to drop
    assert val(jb.get()) == 7
    assert jb.state() == S(2, 2, True, window_pos=0, window_min=-1, calm=2, put=9, got=6, dropped=1)


def test_depth_at_target_drops_nothing() -> None:
    jb = JitterBuffer(min_target=2, max_target=4, capacity=16, window=2, relax_windows=100)
    jb.put(f(1))
    jb.put(f(2))
    out = []
    for v in range(3, 13):
        jb.put(f(v))
        out.append(val(jb.get()))
    assert out == list(range(1, 11))
    assert jb.state() == S(2, 2, True, window_pos=0, window_min=-1, calm=5, put=12, got=10)


def test_relax_lowers_target_after_calm_windows() -> None:
    jb = JitterBuffer(min_target=1, max_target=4, capacity=16, window=2, relax_windows=2)
    jb.target = 3  # as if raised by earlier underruns
    for v in (1, 2, 3, 4):
        jb.put(f(v))
    assert val(jb.get()) == 1
    assert jb.state() == S(3, 3, True, window_pos=1, window_min=3, put=4, got=1)
    jb.put(f(5))
    assert val(jb.get()) == 2
    assert jb.state() == S(3, 3, True, window_pos=0, window_min=-1, calm=1, put=5, got=2)
    jb.put(f(6))
    assert val(jb.get()) == 3
    jb.put(f(7))
    # second calm window: target 3 -> 2; 3 frames were always left > 2 -> frame 4 dropped
    assert val(jb.get()) == 5
    assert jb.state() == S(2, 2, True, window_pos=0, window_min=-1, calm=0, put=7, got=4, dropped=1)


def test_overflow_drops_oldest() -> None:
    jb = JitterBuffer(min_target=1, max_target=2, capacity=4, window=100, relax_windows=3)
    for v in range(1, 8):
        jb.put(f(v))
    assert jb.state() == S(7, 1, False, put=7)
    assert val(jb.get()) == 4  # 1..3 dropped, capacity 4 kept
    assert jb.state() == S(3, 1, True, window_pos=1, window_min=3, put=7, got=1, dropped=3)


def test_follows_a_slower_and_a_faster_clock() -> None:
    """Producer at +1 % and at -1 % of the consumer's rate: the depth stays bounded, frames stay in order."""
    for ratio in (1.01, 0.99):
        jb = JitterBuffer()
        produced = consumed = 0
        t_prod = t_cons = 0.0
        last = 0
        for _ in range(20000):
            if t_prod <= t_cons:
                produced += 1
                jb.put(f(produced % 30000))
                t_prod += 1.0 / ratio
            else:
                v = val(jb.get())
                consumed += 1
                if v:
                    assert v > last or last > 29000
                    last = v
                t_cons += 1.0
            assert len(jb._q) <= jb.max_target + 2
        st = jb.state()
        if ratio > 1:
            assert st.dropped > 0 and st.underruns == 0
        else:
            assert st.underruns > 0 and st.dropped == 0
        assert st.put - st.dropped == (st.got - st.inserted) + st.depth


def test_bridge_crosses_frames_both_ways() -> None:
    br = Bridge(min_target=1, max_target=2, capacity=8, window=50, relax_windows=10)
    br.a.push_rx(AudioFrame(f(7), 0))
    br.b.push_rx(AudioFrame(f(9), 0))
    assert val(br.b.pull_tx(0)) == 7
    assert val(br.a.pull_tx(0)) == 9
    assert br.a.tx_active and br.b.tx_active


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(min_target=3, max_target=2)
    with pytest.raises(ValueError):
        JitterBuffer(min_target=2, max_target=16, capacity=16)
    with pytest.raises(ValueError):
        JitterBuffer(window=0)
