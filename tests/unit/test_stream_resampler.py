import numpy as np
import pytest
from scipy import signal

from media.levels import dbm0
from media.stream_resampler import StreamResampler
from media.tones import tone


@pytest.mark.parametrize(("rin", "rout"), [(48000, 8000), (8000, 48000), (44100, 8000), (8000, 44100),
                                           (16000, 8000), (8000, 8000)])
def test_any_block_split_gives_the_same_output(rin: int, rout: int) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal(rin // 5) * 3000
    whole = StreamResampler(rin, rout).process(x)
    for sizes in ([1, 7, 960, 3], [rin // 50], [5000]):
        r = StreamResampler(rin, rout)
        out, i, k = [], 0, 0
        while i < len(x):
            n = sizes[k % len(sizes)]
            out.append(r.process(x[i:i + n]))
            i, k = i + n, k + 1
        got = np.concatenate(out)
        assert len(got) == len(whole)
        np.testing.assert_allclose(got, whole, rtol=0, atol=1e-6)
    assert abs(len(whole) - len(x) * rout / rin) <= 1


@pytest.mark.parametrize(("rin", "rout"), [(48000, 8000), (8000, 48000), (44100, 8000), (16000, 8000)])
def test_matches_resample_poly_after_the_filter_delay(rin: int, rout: int) -> None:
    x = tone([1000.0], -10.0, rin // 2, sample_rate=rin).astype(np.float64)
    r = StreamResampler(rin, rout)
    y = r.process(np.concatenate([x, np.zeros(rin // 10)]))
    ref = signal.resample_poly(x, r.up, r.down, window=("kaiser", 8.0))
    d = r.delay
    assert d == int(d)
    seg = y[int(d):int(d) + len(ref)]
    np.testing.assert_allclose(seg, ref, atol=1e-6 * 32768)


def test_tone_level_survives_and_alias_is_removed() -> None:
    fs = 48000
    r = StreamResampler(fs, 8000)
    ok = r.process(tone([1000.0], -10.0, fs, sample_rate=fs))
    assert dbm0(ok[400:]) == pytest.approx(-10.0, abs=0.05)
    r = StreamResampler(fs, 8000)
    alias = r.process(tone([7000.0], -10.0, fs, sample_rate=fs))  # would fold to 1 kHz
    assert dbm0(alias[400:]) < -80
