import math

import numpy as np
import pytest

from media import levels
from media.tones import ToneGenerator, tone


@pytest.mark.parametrize("lvl", [0.0, -10.0, -25.0, -55.0])
def test_sine_level_in_dbm0_roundtrips(lvl: float) -> None:
    x = tone([1000.0], lvl, 8000)
    assert levels.dbm0(x) == pytest.approx(lvl, abs=0.05 if lvl > -50 else 0.5)
    assert levels.dbov(x) == pytest.approx(lvl - 6.15, abs=0.05 if lvl > -50 else 0.5)


def test_threshold_mapping_matches_spec_table() -> None:
    # SPEC.md §4: 1 ≈ -88, 100 ≈ -48, 200 ≈ -42, 1000 ≈ -28 dBov
    assert levels.threshold_to_dbov(1) == pytest.approx(-88.3, abs=0.1)
    assert levels.threshold_to_dbov(100) == pytest.approx(-48.3, abs=0.1)
    assert levels.threshold_to_dbov(200) == pytest.approx(-42.3, abs=0.1)
    assert levels.threshold_to_dbov(1000) == pytest.approx(-28.3, abs=0.1)
    assert levels.dbov_to_threshold(levels.threshold_to_dbov(321.0)) == pytest.approx(321.0)


def test_mean_abs_of_noise_relates_to_rms() -> None:
    x = np.random.default_rng(1).normal(0, 1000, 80000)
    assert levels.rms(x) / levels.mean_abs(x.astype(np.int16)) == pytest.approx(math.sqrt(math.pi / 2), rel=0.01)


def test_generator_is_phase_continuous_across_chunks() -> None:
    g = ToneGenerator([697.0, 1209.0], -10.0)
    chunked = np.concatenate([g.samples(160) for _ in range(10)])
    np.testing.assert_array_equal(chunked, tone([697.0, 1209.0], -10.0, 1600))
