"""HARDWARE.md §5.6 5 and §6: digits from the far end. Barge-in during a prompt, a terminator during a
recording (its tone cut from the message), off-nominal digits accepted and rejected at the §6.1 limits,
and speech that must not produce digits."""

from __future__ import annotations

import shutil
import time
from typing import Any

import numpy as np
import pytest

from gatewayd.testing.voicemail_callers import speak
from hil.dut import Dut
from hil.scenarios.steps import (
    GREETING_S,
    action_data,
    call_in,
    hangup,
    locate,
    loud_seconds,
    play_and_get_digits,
    record,
    speechlike,
)
from hil.simulator import LineSimulator
from media import dtmf
from media.frame import SAMPLE_RATE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ALL_KEYS = list("0123456789*#")


@pytest.mark.requires("dtmf")
def test_barge_in_during_play_audio_and_get_digits(line: LineSimulator, dut: Dut) -> None:
    dut.set_script({"NEW_INBOUND_CALL": [play_and_get_digits("greeting.wav", max_digits=4)],
                    "ACTION_SUCCESSFUL:PlayAudioAndGetDigits": [hangup()],
                    "ACTION_FAILED:PlayAudioAndGetDigits": [hangup()]})
    with line.record_far_end() as heard:
        call_in(line, dut)
        t_answer = time.time()
        line.play(np.zeros(SAMPLE_RATE, dtype=np.int16))  # one second into the greeting
        line.send_dtmf("42#")
        ok = dut.wait_event("ACTION_SUCCESSFUL", 15, "PlayAudioAndGetDigits")
        assert line.wait_on_hook(10)
    assert action_data(ok)["ReceivedDigits"] == "42"
    assert ok["t"] - t_answer < GREETING_S - 2, "the greeting was not cut short by the first key"
    assert heard.samples is not None
    played = loud_seconds(heard.samples)
    assert 0.3 < played < GREETING_S - 2.5, f"{played:.2f} s of the {GREETING_S} s greeting reached the caller"


@pytest.mark.requires("dtmf")
def test_terminator_ends_the_recording_and_its_tone_is_cut(line: LineSimulator, dut: Dut, tol: float) -> None:
    dut.set_script({"NEW_INBOUND_CALL": [record("dtmf/terminator", max_s=30, terminators=["#"])],
                    "ACTION_SUCCESSFUL:RecordAudio": [hangup()]})
    call_in(line, dut)
    speech = speechlike(1.5, seed=11)
    line.play(speech)
    line.send_dtmf("#", on_ms=120)
    ok = dut.wait_event("ACTION_SUCCESSFUL", 15, "RecordAudio")
    assert action_data(ok).get("RecordingTerminatorUsed") == "#"
    assert line.wait_on_hook(10)
    [wav] = dut.wait_recordings(1, 10)
    rec = dut.read_recording(wav)
    last = speech[-SAMPLE_RATE // 2:-SAMPLE_RATE // 20]  # the caller's last words (the cut may take a frame)
    lag, corr = locate(rec, last)
    assert corr > 0.8, f"the message is not in the recording (correlation {corr:.2f})"
    assert (len(rec) - lag - len(last)) / SAMPLE_RATE <= tol + 0.1, "the terminator's tone was kept"
    assert dtmf.detect(rec) == []


# (digits, send_dtmf keyword arguments): HARDWARE.md §6.1, North American column
ACCEPT: list[tuple[str, dict[str, Any]]] = [
    ("12", {"freq_offset_pct": 1.5}), ("34", {"freq_offset_pct": -1.5}), ("56", {"twist_db": 4.0}),
    ("78", {"twist_db": -8.0}), ("90", {"on_ms": 40, "off_ms": 40}), ("*5", {"level_dbm0": -25.0})]
REJECT: list[tuple[str, dict[str, Any]]] = [
    ("1", {"freq_offset_pct": 3.5}), ("2", {"freq_offset_pct": -3.5}), ("3", {"on_ms": 23, "off_ms": 60})]


@pytest.mark.requires("offnominal-dtmf")
def test_off_nominal_digits_accepted_and_rejected(line: LineSimulator, dut: Dut) -> None:
    """One call, one PlayAudioAndGetDigits (a short beep) per case; each case ends with a nominal ``#``.
    Accepted cases must come back whole; a rejected key must not appear before the nominal ``7``."""
    collect = play_and_get_digits("beep.wav", max_digits=6, between_ms=2000, repeat_ms=6000)
    dut.set_script({"NEW_INBOUND_CALL": [collect], "ACTION_SUCCESSFUL:PlayAudioAndGetDigits": [collect],
                    "ACTION_FAILED:PlayAudioAndGetDigits": [collect]})
    call_in(line, dut)
    cases = [(d, kw, d) for d, kw in ACCEPT] + [(d, kw, "7") for d, kw in REJECT]
    got = []
    for n, (digits, kw, _) in enumerate(cases, start=1):
        time.sleep(0.5)  # the beep of this round is playing: collection has begun
        line.send_dtmf(digits, **kw)
        if kw in [k for _, k in REJECT]:
            line.send_dtmf("7")
        line.send_dtmf("#")
        ev = dut.wait_event("ACTION_SUCCESSFUL", 10, "PlayAudioAndGetDigits", count=n)
        got.append(action_data(ev).get("ReceivedDigits"))
    line.hang_up()
    assert got == [want for _, _, want in cases]


@pytest.mark.requires("inband-dtmf")
def test_speech_gives_no_digits(line: LineSimulator, dut: Dut) -> None:
    """Talk-off: about 8.6 s of synthetic speech during a recording that any key would end."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("this machine lacks espeak-ng")
    speech = speak("Hello, it's Margaret from the surgery. Could you ring us back on oh one two three, four five six, "
                   "seven eight nine? Thanks, bye now.")
    assert 4 * SAMPLE_RATE < len(speech) < 12 * SAMPLE_RATE
    dut.set_script({"NEW_INBOUND_CALL": [record("dtmf/talkoff", max_s=60, terminators=ALL_KEYS)],
                    "ACTION_SUCCESSFUL:RecordAudio": [hangup()]})
    call_in(line, dut)
    line.play(speech, level_dbm0=-15.0)
    line.play(np.zeros(SAMPLE_RATE // 2, dtype=np.int16))
    assert dut.events("ACTION_SUCCESSFUL", "RecordAudio") == [], "a digit ended the recording during speech"
    assert dut.events("DIGITS_RECEIVED") == []
    line.send_dtmf("#")  # and a real key still works
    ok = dut.wait_event("ACTION_SUCCESSFUL", 10, "RecordAudio")
    assert action_data(ok).get("RecordingTerminatorUsed") == "#"
    assert line.wait_on_hook(10)
