"""VoiceFocus ``learned`` backend (GRU-refined MMSE-LSA gain): contract, state, weights file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from media.voicefocus import BACKENDS, FRAME, VoiceFocus, create, enhance_with
from media.voicefocus.learned import (
    NB,
    NCOEF,
    NFEAT,
    WEIGHTS,
    LearnedVoiceFocus,
    WeightsError,
    band_matrix,
    load_weights,
)

FS = 8000
LAT = FRAME


def run(vf: VoiceFocus, x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME * FRAME
    return np.concatenate([vf.process(x[i:i + FRAME]) for i in range(0, n, FRAME)])


def noisy_speech(seconds: float = 2.0, noise_rms: float = 1000.0, seed: int = 0) -> np.ndarray:
    """Harmonic 'speech' with syllables and a gliding pitch, over white noise (int16)."""
    t = np.arange(int(seconds * FS)) / FS
    ph = 2 * np.pi * np.cumsum(140 * (1 + 0.15 * np.sin(2 * np.pi * 1.3 * t))) / FS
    s = sum(np.sin(k * ph) / k for k in range(1, 24))
    s = s * np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) * 6000 / np.max(np.abs(s))
    x = s + np.random.default_rng(seed).standard_normal(len(t)) * noise_rms
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def power(x: np.ndarray) -> float:
    return float(np.mean(np.asarray(x, dtype=np.float64) ** 2))


def test_backend_is_selectable() -> None:
    assert BACKENDS == ("builtin", "learned")
    assert type(create("learned")) is LearnedVoiceFocus
    assert type(create("builtin")) is VoiceFocus
    with pytest.raises(ValueError, match="unknown VoiceFocus backend"):
        create("nope")


def test_frame_contract_and_latency() -> None:
    vf = create("learned")
    assert vf.latency_samples == LAT == 160
    x = noisy_speech(0.5)
    for i in range(0, len(x), FRAME):
        y = vf.process(x[i:i + FRAME])
        assert y.dtype == np.int16 and y.shape == (FRAME,)
    with pytest.raises(ValueError, match="160"):
        vf.process(np.zeros(80, dtype=np.int16))


def test_no_lookahead_beyond_one_frame() -> None:
    """Output frame k depends on input frames <= k only: the GRU adds no latency to the 20 ms."""
    a = noisy_speech(2.0, seed=1)
    b = a.copy()
    cut = 45 * FRAME  # inputs differ from here on (mid-syllable)
    b[cut:] = noisy_speech(2.0, seed=2)[cut:]
    ya, yb = run(create("learned"), a), run(create("learned"), b)
    assert np.array_equal(ya[:cut], yb[:cut])
    assert not np.array_equal(ya[cut:cut + 2 * FRAME], yb[cut:cut + 2 * FRAME])


def test_latency_as_declared_delayed_chirp() -> None:
    t = np.arange(int(1.5 * FS)) / FS
    chirp = np.where((t > 0.6) & (t < 1.2), 8000 * np.sin(2 * np.pi * (200 * t + 900 * t ** 2)), 0.0)
    x = np.rint(chirp + np.random.default_rng(0).standard_normal(len(t)) * 30).astype(np.int16)
    y = run(create("learned"), x).astype(np.float64)
    c = np.correlate(y, x.astype(np.float64)[:len(y)], "full")
    assert int(np.argmax(c)) - (len(y) - 1) == LAT


def test_streaming_equals_offline() -> None:
    x = noisy_speech(2.0, seed=3)[:15_001]
    offline = enhance_with(x, "learned")
    streamed = run(create("learned"), np.r_[x, np.zeros(2 * FRAME, dtype=np.int16)])
    assert len(offline) == len(x)
    assert np.array_equal(offline, streamed[LAT:LAT + len(x)])


def test_reset_forgets_state() -> None:
    vf = create("learned")
    assert isinstance(vf, LearnedVoiceFocus)
    first = run(vf, noisy_speech(1.0, seed=4))
    run(vf, noisy_speech(1.0, noise_rms=4000.0, seed=5))  # state now differs from a fresh one
    assert vf._hb[:vf.hidden].any()
    vf.reset()
    assert not vf._hb[:vf.hidden].any()
    assert np.array_equal(run(vf, noisy_speech(1.0, seed=4)), first)


def test_output_bounded_and_finite_on_extremes() -> None:
    rng = np.random.default_rng(6)
    loud = np.clip(rng.standard_normal(FS) * 30000, -32768, 32767).astype(np.int16)
    square = np.where(np.arange(FS) % 40 < 20, 32767, -32768).astype(np.int16)
    for x in (np.zeros(FS, dtype=np.int16), loud, square, noisy_speech(1.0)):
        vf = create("learned")
        y = run(vf, x)
        assert y.dtype == np.int16
        assert np.all(np.isfinite(vf._hb)) and np.all(np.abs(vf._hb[:vf.hidden]) <= 1.0)
        assert power(y) <= 2.0 * power(x) + 1.0  # a suppressor never adds energy


def test_silence_in_silence_out() -> None:
    assert not run(create("learned"), np.zeros(FS, dtype=np.int16)).any()


def test_reduces_noise_and_keeps_speech() -> None:
    noise_only = np.rint(np.random.default_rng(7).standard_normal(3 * FS) * 1000).astype(np.int16)
    y = run(create("learned"), noise_only)
    assert 10 * np.log10(power(noise_only[FS:]) / power(y[FS:])) >= 10.0
    x = noisy_speech(3.0, noise_rms=300.0, seed=8)
    y = run(create("learned"), x).astype(np.float64)[LAT:]
    ref = x[:len(y)].astype(np.float64)
    assert np.corrcoef(y[FS:], ref[FS:])[0, 1] > 0.9


def test_disabled_is_a_delay_then_enabling_suppresses() -> None:
    vf = create("learned", enabled=False)
    x = np.rint(np.random.default_rng(9).standard_normal(3 * FS) * 1000).astype(np.int16)
    y = run(vf, x[:FS])
    assert np.array_equal(y[LAT:], x[:FS - LAT])  # disabled: a plain delay
    vf.set_enabled(True)
    y2 = run(vf, x[FS:])
    assert y2.shape == (2 * FS,)
    assert 10 * np.log10(power(x[2 * FS:]) / power(y2[FS:])) >= 10.0  # suppressing once enabled


def test_shipped_weights_load_with_expected_shapes() -> None:
    w = load_weights(WEIGHTS)
    h = w["w_hh"].shape[1]
    assert w["w_ih"].shape == (3 * h, NFEAT) and w["w_out"].shape == (NCOEF * NB, h)
    assert band_matrix().shape == (NB, 161) and np.allclose(band_matrix().sum(axis=0), 1.0)


def _write(path: Path, **arrs: np.ndarray) -> Path:
    np.savez(path, **arrs)  # type: ignore[arg-type]
    return path


def test_bad_weights_files_give_clear_errors(tmp_path: Path) -> None:
    good = dict(np.load(WEIGHTS))
    with pytest.raises(WeightsError, match="cannot read"):
        load_weights(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="cannot read"):
        load_weights(tmp_path / "junk.npz")
    with pytest.raises(WeightsError, match="missing array 'w_out'"):
        load_weights(_write(tmp_path / "a.npz", **{k: v for k, v in good.items() if k != "w_out"}))
    with pytest.raises(WeightsError, match=r"'w_ih' has shape \(\d+, 10\), expected"):
        load_weights(_write(tmp_path / "b.npz", **{**good, "w_ih": good["w_ih"][:, :10]}))
    bad = good["b_out"].copy()
    bad[0] = np.nan
    with pytest.raises(WeightsError, match="NaN"):
        load_weights(_write(tmp_path / "c.npz", **{**good, "b_out": bad}))
    with pytest.raises(WeightsError):
        LearnedVoiceFocus(weights=tmp_path / "b.npz")


@pytest.mark.parametrize("backend, cls", [("learned", LearnedVoiceFocus), ("builtin", VoiceFocus)])
def test_config_selects_backend_for_legs(backend: str, cls: type) -> None:
    from gatewayd.config.model import Config, MediaConfig
    from gatewayd.factories import media_factories

    assert Config().media.voicefocus_backend == "learned"
    mf = media_factories(Config(media=MediaConfig(voicefocus_backend=backend)))  # type: ignore[arg-type]
    assert mf.suppressor is not None
    a, b = mf.suppressor(), mf.suppressor()
    assert type(a) is cls and a is not b  # one per leg
    assert not a.enabled  # created off: the first enable cross-fades in


def test_the_config_names_the_same_backends_and_default_as_media() -> None:
    # gatewayd lists the backends without loading scipy (config model); they must stay media's own
    from gatewayd.config.model import DEFAULT_VOICEFOCUS_BACKEND, VOICEFOCUS_BACKENDS
    from media.voicefocus import BACKENDS, DEFAULT_BACKEND

    assert VOICEFOCUS_BACKENDS == BACKENDS
    assert DEFAULT_VOICEFOCUS_BACKEND == DEFAULT_BACKEND
