"""HARDWARE.md §5.6 3, 7, 8, 10: a caller who gives up while it rings, back-to-back calls after a hang-up in
a menu, a call-waiting burst during a call, and the recording limits (maximum length, silence)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hil.dut import Dut
from hil.scenarios.steps import (
    CALLER,
    action_data,
    call_in,
    hangup,
    locate,
    participant,
    play_and_get_digits,
    record,
    speechlike,
)
from hil.simulator import CallerId, CallWaiting, ExtensionPickup, LineSimulator
from hil.tolerances import HANDLER_S
from media.frame import SAMPLE_RATE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

LISTEN = np.zeros(SAMPLE_RATE // 2, dtype=np.int16)
ANALOG_RING_TIMEOUT_S = 9.5  # both analog drivers decide a caller gave up after 8 s without a ring


def test_caller_abandons_while_ringing(line: LineSimulator, dut: Dut) -> None:
    """Analog: the caller gives up during the first ring (before caller ID): no call reaches the handler,
    the DUT never goes off-hook, and the next caller is taken normally. SIP: the handler does not answer
    at once; the caller CANCELs: the handler gets HANGUP and nothing is answered."""
    if "sip" in line.capabilities:
        dut.set_script({})
        line.ring(CALLER)
        entry = dut.wait_event("NEW_INBOUND_CALL", 10)
        line.abandon()
        dut.wait_event("HANGUP", 10)
        assert not line.wait_answered(1.0)
        assert participant(entry)["From"] == CALLER.number
    else:
        line.ring(CALLER)
        time.sleep(0.2)
        line.abandon()
        assert not line.wait_answered(ANALOG_RING_TIMEOUT_S)  # the whole time the DUT may think it still rings
        # either the call never reached the handler (the modem offers on caller ID or ring 2), or it was
        # offered without caller ID (the FXO line offers when the caller-ID window closes) and then ended
        if dut.transcript():
            dut.wait_event("HANGUP", 5)
            kinds = [e["event"]["InvocationEventType"] for e in dut.transcript()]
            assert kinds == ["NEW_INBOUND_CALL", "HANGUP"], kinds
    # the next caller is taken as usual
    dut.set_script({"NEW_INBOUND_CALL": [record("flow/after-abandon", max_s=2)],
                    "ACTION_SUCCESSFUL:RecordAudio": [hangup()]})
    second = CallerId(number="5557770002")
    call_in(line, dut, second)
    news = dut.events("NEW_INBOUND_CALL")
    assert participant(news[-1])["From"] == "5557770002"
    dut.wait_event("ACTION_SUCCESSFUL", 10, "RecordAudio")
    assert line.wait_on_hook(10)


def test_back_to_back_calls_after_a_hang_up_in_a_menu(line: LineSimulator, dut: Dut) -> None:
    """The first caller presses 1 and hangs up in the middle of a menu; the second caller's menu starts
    clean (no stale digit) and works."""
    menu = play_and_get_digits("greeting.wav", max_digits=3, between_ms=3000)
    dut.set_script({"NEW_INBOUND_CALL": [menu], "ACTION_SUCCESSFUL:PlayAudioAndGetDigits": [hangup()],
                    "ACTION_FAILED:PlayAudioAndGetDigits": [hangup()]})
    call_in(line, dut, CallerId(number="5551110001"))
    line.play(LISTEN)  # the caller hears the menu start before pressing a key
    line.send_dtmf("1")
    line.hang_up()
    dut.wait_event("HANGUP", 15)
    assert line.wait_on_hook(10)
    first_call = participant(dut.events("NEW_INBOUND_CALL")[0])["CallId"]
    call_in(line, dut, CallerId(number="5552220002"))
    line.play(LISTEN)
    line.send_dtmf("5#")
    ok = dut.wait_event("ACTION_SUCCESSFUL", 15, "PlayAudioAndGetDigits")
    assert line.wait_on_hook(10)
    assert action_data(ok)["ReceivedDigits"] == "5"
    news = dut.events("NEW_INBOUND_CALL")
    assert [participant(e)["From"] for e in news] == ["5551110001", "5552220002"]
    assert participant(news[1])["CallId"] != first_call
    assert all(participant(e)["CallId"] == first_call for e in dut.events("HANGUP")[:1])
    assert dut.metric("gatewayd_live_calls") == 0


@pytest.mark.requires("call-waiting")
def test_call_waiting_burst_is_ignored(line: LineSimulator, dut: Dut) -> None:
    dut.set_script({"NEW_INBOUND_CALL": [record("flow/call-waiting", max_s=30, terminators=["#"])],
                    "ACTION_SUCCESSFUL:RecordAudio": [hangup()]})
    call_in(line, dut)
    assert isinstance(line, CallWaiting)
    line.play(speechlike(1.0, seed=21))
    line.call_waiting(CallerId(number="5559990009", name="SECOND CALLER"))
    after = speechlike(1.0, seed=22)
    line.play(after)
    assert dut.events("ACTION_SUCCESSFUL", "RecordAudio") == [], "the burst ended the recording"
    line.send_dtmf("#")
    ok = dut.wait_event("ACTION_SUCCESSFUL", 10, "RecordAudio")
    assert action_data(ok).get("RecordingTerminatorUsed") == "#"
    assert line.wait_on_hook(10)
    assert len(dut.events("NEW_INBOUND_CALL")) == 1
    assert dut.events("DIGITS_RECEIVED") == []
    assert {participant(e)["CallId"] for e in dut.transcript()} == {participant(ok)["CallId"]}
    [wav] = dut.wait_recordings(1, 10)
    _, corr = locate(dut.read_recording(wav), after[: SAMPLE_RATE // 2])
    assert corr > 0.8, "the caller's audio after the burst is not in the message"


def test_recording_stops_at_its_maximum_length(line: LineSimulator, dut: Dut) -> None:
    dut.set_script({"NEW_INBOUND_CALL": [record("flow/max-length", max_s=2)],
                    "ACTION_SUCCESSFUL:RecordAudio": [hangup()]})
    call_in(line, dut)
    line.play(speechlike(4.0, seed=31), wait=False)
    dut.wait_event("ACTION_SUCCESSFUL", 10, "RecordAudio")  # while the caller is still talking
    assert line.wait_on_hook(10)
    [wav] = dut.wait_recordings(1, 10)
    assert abs(len(dut.read_recording(wav)) / SAMPLE_RATE - 2.0) <= 0.05  # leg time: exact to a frame or two


def test_recording_stops_after_the_silence_duration(line: LineSimulator, dut: Dut, tol: float) -> None:
    dut.set_script({"NEW_INBOUND_CALL": [record("flow/silence", max_s=30, silence_s=2, threshold=200)],
                    "ACTION_SUCCESSFUL:RecordAudio": [hangup()]})
    call_in(line, dut)
    speech = speechlike(1.5, seed=41)
    line.play(speech)
    t_quiet = time.time()
    ok = dut.wait_event("ACTION_SUCCESSFUL", 10, "RecordAudio")
    took = ok["t"] - t_quiet
    assert 2.0 - tol <= took <= 2.0 + HANDLER_S + tol, f"stopped {took:.2f} s after the caller fell silent"
    assert line.wait_on_hook(10)
    [wav] = dut.wait_recordings(1, 10)
    rec = dut.read_recording(wav)
    last = speech[-SAMPLE_RATE // 2:]
    lag, corr = locate(rec, last)
    assert corr > 0.8
    assert float(np.abs(rec[lag + len(last):].astype(np.int32)).mean() if len(rec) > lag + len(last) else 0) < 200


@pytest.mark.requires("extension-pickup")
def test_extension_picked_up_mid_call_ends_the_call(line: LineSimulator, dut: Dut, tol: float) -> None:
    """Someone answers on another phone of the same line: gatewayd leaves the line to them (HANGUP), and the
    message so far is kept."""
    dut.set_script({"NEW_INBOUND_CALL": [record("flow/extension", max_s=30)]})
    call_in(line, dut)
    speech = speechlike(1.0, seed=71)
    line.play(speech)
    assert isinstance(line, ExtensionPickup)
    t0 = time.time()
    line.extension_pickup()
    hang = dut.wait_event("HANGUP", 10)
    assert hang["t"] - t0 <= HANDLER_S + tol
    assert line.wait_on_hook(10)
    [wav] = dut.wait_recordings(1, 10)
    _, corr = locate(dut.read_recording(wav), speech[SAMPLE_RATE // 4: 3 * SAMPLE_RATE // 4])
    assert corr > 0.8
