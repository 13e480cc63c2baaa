"""The DTMF detector against ITU-T Q.24 (North American column) and HARDWARE.md §6.3.

Every figure is synthesised, passed through G.711 (µ-law and A-law) and fed to the detector in
160-sample AudioFrames. Burst trains start each burst at a different offset against the detector's
51-sample window grid (:func:`tests.dtmf_signals.train`), so a figure holds at every alignment, not
just a lucky one. Accept tests need every burst reported exactly once with the right digit and
nothing else; reject tests need no event at all.
"""

from __future__ import annotations

import numpy as np
import pytest

from media.dtmf import KEYPAD, DtmfParams, dtmf_tone
from media.frame import to_int16
from tests.dtmf_signals import LAWS, Train, add_noise, add_tones, all_digits, detect_frames, line, match, train

MS = 8  # samples per millisecond


def assert_all_detected(t: Train, law: str, params: DtmfParams | None = None) -> None:
    events = detect_frames(line(t.samples, law), params)
    hits, extra = match(events, t)
    assert (hits, extra) == (len(t.bursts), 0), (
        f"{hits}/{len(t.bursts)} bursts detected, {extra} extra events: "
        f"sent {t.digits} got {''.join(e.digit for e in events)}")


def assert_none_detected(t: Train, law: str, params: DtmfParams | None = None) -> None:
    events = detect_frames(line(t.samples, law), params)
    assert events == [], f"{len(events)} events from bursts that must be rejected: {events[:3]}"


# ---------------------------------------------------------------- decode
@pytest.mark.parametrize("law", LAWS)
def test_decode_all_16_digits_50ms_on_50ms_off(law: str) -> None:
    t = train(all_digits(48), on=50 * MS, off=50 * MS)
    events = detect_frames(line(t.samples, law))
    assert "".join(e.digit for e in events) == t.digits
    assert match(events, t) == (48, 0)


# ---------------------------------------------------------------- frequency: accept ±1.5 %, reject ±3.5 %
@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize(("low", "high"), [(0.015, 0.0), (-0.015, 0.0), (0.0, 0.015), (0.0, -0.015),
                                           (0.015, 0.015), (0.015, -0.015), (-0.015, 0.015), (-0.015, -0.015)])
def test_frequency_error_of_1_5_percent_is_accepted(law: str, low: float, high: float) -> None:
    assert_all_detected(train(all_digits(32), on=50 * MS, low_offset=low, high_offset=high), law)


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize(("low", "high"), [(0.035, 0.0), (-0.035, 0.0), (0.0, 0.035), (0.0, -0.035)])
def test_frequency_error_of_3_5_percent_is_rejected(law: str, low: float, high: float) -> None:
    assert_none_detected(train(all_digits(32), on=50 * MS, low_offset=low, high_offset=high), law)


# ---------------------------------------------------------------- twist: +4 dB / -8 dB accepted
@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize(("low_dbm0", "twist"), [(-10.0, 4.0), (-25.0, 4.0), (-4.0, 4.0),
                                                 (-10.0, -8.0), (-17.0, -8.0), (0.0, -8.0)])
def test_twist_from_plus_4_to_minus_8_db_is_accepted(law: str, low_dbm0: float, twist: float) -> None:
    """Positive twist: high group stronger (reverse twist); negative: high group weaker (normal)."""
    assert_all_detected(train(all_digits(32), on=50 * MS, level_dbm0=low_dbm0, twist_db=twist), law)


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("twist", [6.0, -10.0])
def test_twist_beyond_plus_6_or_minus_10_db_is_rejected(law: str, twist: float) -> None:
    """HARDWARE.md §6.3: +6 / -10 dB expected to be rejected (measured limits: about +5.5 / -9.5 dB)."""
    assert_none_detected(train(all_digits(32), on=50 * MS, level_dbm0=-10.0, twist_db=twist), law)


# ---------------------------------------------------------------- level: 0..-25 dBm0 accepted, -55 rejected
@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("level", [0.0, -5.0, -10.0, -15.0, -20.0, -25.0])
def test_level_0_to_minus_25_dbm0_per_tone_is_accepted(law: str, level: float) -> None:
    assert_all_detected(train(all_digits(32), on=50 * MS, level_dbm0=level), law)


@pytest.mark.parametrize("law", LAWS)
def test_level_minus_55_dbm0_per_tone_is_rejected(law: str) -> None:
    assert_none_detected(train(all_digits(32), on=200 * MS, level_dbm0=-55.0), law)


@pytest.mark.parametrize("law", LAWS)
def test_dynamic_range_is_at_least_35_db(law: str) -> None:
    """Mitel test 5 / SpanDSP: 0 down to -35 dBm0 per tone."""
    assert_all_detected(train(all_digits(32), on=50 * MS, level_dbm0=-35.0), law)


# ---------------------------------------------------------------- duration: accept >= 40 ms, reject <= 23 ms
CONDITIONS = [{}, {"level_dbm0": 0.0}, {"level_dbm0": -25.0}, {"twist_db": 4.0}, {"twist_db": -8.0},
              {"low_offset": 0.015, "high_offset": -0.015}, {"low_offset": -0.015, "high_offset": 0.015}]


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("cond", CONDITIONS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "nominal")
def test_40ms_tone_is_accepted_at_every_alignment(law: str, cond: dict[str, float]) -> None:
    assert_all_detected(train(all_digits(51), on=40 * MS, **cond), law)


@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("cond", CONDITIONS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "nominal")
def test_23ms_tone_is_rejected_at_every_alignment(law: str, cond: dict[str, float]) -> None:
    assert_none_detected(train(all_digits(51), on=23 * MS, **cond), law)


# ---------------------------------------------------------------- interruptions and pauses
def _pairs(digit_gap: int, on: int) -> Train:
    """For each of 51 alignments: a tone, ``digit_gap`` samples of silence, the same tone again."""
    parts, bursts, pos = [], [], 0
    for i in range(51):
        d = KEYPAD[i % 16]
        lead = 400 + (i * 7) % 51
        tone = dtmf_tone(d, 2 * on + digit_gap)
        tone[on:on + digit_gap] = 0  # the same oscillator, interrupted
        parts += [np.zeros(lead, dtype=np.int16), tone]
        bursts += [(d, pos + lead, pos + lead + on), (d, pos + lead + on + digit_gap, pos + lead + 2 * on + digit_gap)]
        pos += lead + tone.shape[0]
    parts.append(np.zeros(800, dtype=np.int16))
    return Train(np.concatenate(parts), bursts)


@pytest.mark.parametrize("law", LAWS)
def test_10ms_interruption_is_bridged_into_one_digit(law: str) -> None:
    t = _pairs(10 * MS, 50 * MS)
    events = detect_frames(line(t.samples, law))
    assert len(events) == 51, f"{len(events)} events for 51 interrupted key presses"
    for k, e in enumerate(events):
        (d, a, _), (_, _, b) = t.bursts[2 * k], t.bursts[2 * k + 1]
        assert e.digit == d
        assert abs(e.start - a) <= 5 * MS and abs(e.end - b) <= 5 * MS


@pytest.mark.parametrize("law", LAWS)
def test_19ms_interruption_is_bridged_too(law: str) -> None:
    """ETSI ES 201 235-3 (quoted by Asterisk): no valid signal for under 20 ms shall not end a digit."""
    t = _pairs(19 * MS, 50 * MS)
    events = detect_frames(line(t.samples, law))
    assert [e.digit for e in events] == [d for d, _, _ in t.bursts[::2]]


@pytest.mark.parametrize("law", LAWS)
def test_40ms_pause_separates_repeated_digits(law: str) -> None:
    t = _pairs(40 * MS, 50 * MS)
    assert_all_detected(t, law)


@pytest.mark.parametrize("law", LAWS)
def test_40ms_on_40ms_off_train_of_one_digit_gives_one_event_each(law: str) -> None:
    """Faster than Q.24's 93 ms/digit signalling velocity: still one event per press."""
    for d in "5#":
        t = train([d] * 40, on=40 * MS, off=40 * MS)
        assert_all_detected(t, law)


# ---------------------------------------------------------------- noise
@pytest.mark.parametrize("law", LAWS)
def test_99_percent_detected_at_15db_snr_over_1000_bursts(law: str) -> None:
    """Mitel test 7 style: 1000 bursts (50 ms on, 50 ms off) with white noise 15 dB below each tone.

    Each tone at -10 dBm0, white Gaussian noise at -25 dBm0 over the whole 0-4 kHz band (SpanDSP's
    definition: S/N is per tone, so the pair is 18 dB above the noise).
    """
    t = train(all_digits(1000), on=50 * MS, off=50 * MS, level_dbm0=-10.0)
    x = line(add_noise(t.samples, -25.0, seed=15), law)
    events = detect_frames(x)
    hits, extra = match(events, t)
    assert hits >= 990, f"only {hits}/1000 detected at 15 dB S/N"
    assert extra == 0, f"{extra} wrong or duplicate events at 15 dB S/N"


@pytest.mark.parametrize("law", LAWS)
def test_noise_alone_gives_no_digit(law: str) -> None:
    x = line(add_noise(np.zeros(60 * 8000), -20.0, seed=3), law)
    assert detect_frames(x) == []


# ---------------------------------------------------------------- dial tone
@pytest.mark.parametrize("law", LAWS)
@pytest.mark.parametrize("level", [-10.0, -25.0])
def test_digits_detected_with_dial_tone_present(law: str, level: float) -> None:
    """350 + 440 Hz at -13 dBm0 each under the digits, as when dialling over dial tone."""
    t = train(all_digits(32), on=50 * MS, level_dbm0=level)
    x = add_tones(t.samples, [350.0, 440.0], -13.0)
    events = detect_frames(line(x, law))
    assert match(events, t) == (32, 0)


def test_dial_tone_tolerance_is_what_makes_it_work() -> None:
    """Without the 350/440 Hz projection the dial tone swamps a -25 dBm0 digit's energy ratio."""
    t = train(all_digits(16), on=50 * MS, level_dbm0=-25.0)
    x = line(add_tones(t.samples, [350.0, 440.0], -13.0), "ulaw")
    assert detect_frames(x, DtmfParams(dialtone_tolerant=False)) == []


@pytest.mark.parametrize("law", LAWS)
def test_dial_tone_alone_gives_no_digit(law: str) -> None:
    x = add_tones(np.zeros(10 * 8000), [350.0, 440.0], -13.0)
    assert detect_frames(line(add_noise(x, -40.0), law)) == []


# ---------------------------------------------------------------- event semantics
@pytest.mark.parametrize("law", LAWS)
def test_one_event_per_key_press_with_start_and_end(law: str) -> None:
    """Long presses (the thess #13 class of bug: one digit reported many times) and timestamps."""
    durations = [45, 100, 250, 600, 1500, 3000]
    parts, bursts, pos = [], [], 0
    for i, ms in enumerate(durations):
        d = KEYPAD[(5 * i) % 16]
        lead = 1000 + 13 * i
        parts += [np.zeros(lead, dtype=np.int16), dtmf_tone(d, ms * MS)]
        bursts.append((d, pos + lead, pos + lead + ms * MS))
        pos += lead + ms * MS
    parts.append(np.zeros(1000, dtype=np.int16))
    x = np.concatenate(parts)
    for noisy in (False, True):
        sig = line(add_noise(x, -25.0, seed=4) if noisy else x, law)
        events = detect_frames(sig)
        assert [e.digit for e in events] == [d for d, _, _ in bursts]
        for e, (_, a, b) in zip(events, bursts, strict=True):
            assert abs(e.start - a) <= 5 * MS, (e, a)
            assert abs(e.end - b) <= 5 * MS, (e, b)


def test_start_and_end_within_5ms_at_every_alignment() -> None:
    for on in (40 * MS, 55 * MS, 100 * MS):
        t = train(all_digits(51), on=on)
        events = detect_frames(line(t.samples, "ulaw"))
        assert len(events) == 51
        for e, (d, a, b) in zip(events, t.bursts, strict=True):
            assert e.digit == d
            assert abs(e.start - a) <= 5 * MS and abs(e.end - b) <= 5 * MS, (e, a, b)


def test_reported_level_and_twist() -> None:
    x = line(to_int16(np.concatenate([np.zeros(800), dtmf_tone("9", 800, level_dbm0=-12.0, twist_db=-3.0),
                                      np.zeros(800)])), "ulaw")
    (e,) = detect_frames(x)
    assert e.twist_db == pytest.approx(-3.0, abs=0.3)
    assert e.level_dbm0 == pytest.approx(-13.5, abs=0.3)
