"""HARDWARE.md §5.6 9: the DUT's device disappears (USB pulled mid-call, then re-enumerated) or sends garbage.
gatewayd must end the call cleanly (HANGUP, the partial message kept), report the line down, recover on
its own once the device is back, and take the next call as if nothing happened."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hil.dut import Dut
from hil.scenarios.steps import action_data, call_in, hangup, locate, participant, record, speechlike
from hil.simulator import CallerId, DeviceFaults, LineSimulator
from media.frame import SAMPLE_RATE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120), pytest.mark.requires("device-faults")]


def junk(n: int, seed: int) -> bytes:
    """Random bytes without DLE (0x10): on a modem a DLE pair is a real event, not noise."""
    x = np.random.default_rng(seed).integers(0, 256, n).astype(np.uint8)
    x[x == 0x10] = 0x11
    return x.tobytes()


def test_garbage_on_the_port_while_idle_and_during_a_call(line: LineSimulator, dut: Dut) -> None:
    assert isinstance(line, DeviceFaults)
    line.garbage(junk(2000, 1) + b"\r\n")
    time.sleep(0.5)  # let the DUT chew on it before the next ring
    dut.set_script({"NEW_INBOUND_CALL": [record("faults/garbage", max_s=30, terminators=["#"])],
                    "ACTION_SUCCESSFUL:RecordAudio": [hangup()]})
    call_in(line, dut, CallerId(number="5553330003"))
    speech = speechlike(1.5, seed=51)
    line.play(speech[: SAMPLE_RATE // 2])
    line.garbage(junk(3000, 2) + b"\r\n")
    line.play(speech[SAMPLE_RATE // 2:])
    line.send_dtmf("#")
    ok = dut.wait_event("ACTION_SUCCESSFUL", 10, "RecordAudio")
    assert action_data(ok).get("RecordingTerminatorUsed") == "#"
    assert participant(dut.events("NEW_INBOUND_CALL")[0])["From"] == "5553330003"
    assert line.wait_on_hook(10)
    [wav] = dut.wait_recordings(1, 10)
    _, corr = locate(dut.read_recording(wav), speech[SAMPLE_RATE // 2: SAMPLE_RATE])
    assert corr > 0.8
    assert dut.alive and dut.line_state() == "up"


def test_device_lost_mid_call_then_back(line: LineSimulator, dut: Dut) -> None:
    assert isinstance(line, DeviceFaults)
    dut.set_script({"NEW_INBOUND_CALL": [record("faults/unplugged", max_s=30)]})
    call_in(line, dut)
    speech = speechlike(1.5, seed=61)
    line.play(speech)
    t_lost = time.time()
    line.unplug()
    try:
        hang = dut.wait_event("HANGUP", 10)
        assert hang["t"] - t_lost < 5.0
        assert dut.wait_until(lambda: dut.line_state() != "up", 10), "the line still shows up"
        [wav] = dut.wait_recordings(1, 15)  # the message so far is kept
        _, corr = locate(dut.read_recording(wav), speech[SAMPLE_RATE // 2: SAMPLE_RATE])
        assert corr > 0.8
    finally:
        line.replug()
    assert dut.wait_until(lambda: dut.line_state() == "up", 30), f"no recovery: {dut.status()['lines']}"
    assert dut.alive
    dut.set_script({"NEW_INBOUND_CALL": [record("faults/after", max_s=1)], "ACTION_SUCCESSFUL:RecordAudio": [hangup()]})
    call_in(line, dut, CallerId(number="5554440004"))
    assert participant(dut.events("NEW_INBOUND_CALL")[-1])["From"] == "5554440004"
    dut.wait_event("ACTION_SUCCESSFUL", 10, "RecordAudio")
    assert line.wait_on_hook(10)
