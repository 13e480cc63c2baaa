"""G.711 must be bit-exact with the reference (stdlib audioop on 3.11, audioop-lts on 3.13+)."""

import warnings

import numpy as np
import pytest

from media import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop  # type: ignore[import-not-found]
    except ImportError:  # Python >= 3.13
        audioop = pytest.importorskip("audioop_lts")

ALL = np.arange(-32768, 32768, dtype=np.int16)
CODES = bytes(range(256))


def test_ulaw_encode_bit_exact_for_every_input() -> None:
    ref = np.frombuffer(audioop.lin2ulaw(ALL.tobytes(), 2), dtype=np.uint8)
    np.testing.assert_array_equal(g711.ulaw_encode(ALL), ref)


def test_alaw_encode_bit_exact_for_every_input() -> None:
    ref = np.frombuffer(audioop.lin2alaw(ALL.tobytes(), 2), dtype=np.uint8)
    np.testing.assert_array_equal(g711.alaw_encode(ALL), ref)


def test_decode_bit_exact_for_every_code() -> None:
    np.testing.assert_array_equal(g711.ulaw_decode(CODES), np.frombuffer(audioop.ulaw2lin(CODES, 2), "<i2"))
    np.testing.assert_array_equal(g711.alaw_decode(CODES), np.frombuffer(audioop.alaw2lin(CODES, 2), "<i2"))


def test_silence_codes() -> None:
    assert g711.ulaw_decode(bytes([g711.ULAW_SILENCE]))[0] == 0
    assert g711.alaw_decode(bytes([g711.ALAW_SILENCE]))[0] == 8
    assert g711.ulaw_encode(np.zeros(1, np.int16))[0] == g711.ULAW_SILENCE


def test_roundtrip_is_idempotent() -> None:
    once = g711.ulaw_roundtrip(ALL)
    np.testing.assert_array_equal(g711.ulaw_roundtrip(once), once)
    once = g711.alaw_roundtrip(ALL)
    np.testing.assert_array_equal(g711.alaw_roundtrip(once), once)
