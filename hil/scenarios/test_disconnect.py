"""HARDWARE.md §5.6 4: the caller speaks, then the far end goes away by each signal the line can carry.
gatewayd must end the call (HANGUP to the handler) within the budget for that signal, and the message
recorded must hold the caller's audio and not the tone (or silence) that followed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hil.dut import Dut
from hil.scenarios.steps import call_in, locate, record, speechlike
from hil.simulator import Disconnect, LineSimulator
from hil.tolerances import DETECTION_S, disconnect_budget_s
from media.frame import SAMPLE_RATE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

SILENCE_S = 3
PAUSE_MS = 300  # ms: the caller stops talking a moment before hanging up (audio in flight is not lost)

_NEEDS = {Disconnect.CPC: "disconnect-cpc", Disconnect.POLARITY: "disconnect-polarity",
          Disconnect.BUSY: "disconnect-tones", Disconnect.REORDER: "disconnect-tones",
          Disconnect.DIAL_TONE: "disconnect-tones", Disconnect.SILENCE: "disconnect-silence",
          Disconnect.BYE: "disconnect-bye"}


def _case(how: Disconnect) -> object:
    marks = [pytest.mark.requires(_NEEDS[how]), pytest.mark.hil_line(disconnect=how, tone_after_disconnect="none")]
    if how is Disconnect.SILENCE:
        marks.append(pytest.mark.hil_dut(silence_hangup_s=SILENCE_S))
    return pytest.param(how, marks=marks, id=str(how))


@pytest.mark.parametrize("how", [_case(h) for h in Disconnect])
def test_far_end_disconnect_ends_the_call_and_trims_the_recording(
        line: LineSimulator, dut: Dut, tol: float, how: Disconnect) -> None:
    dut.set_script({"NEW_INBOUND_CALL": [record(f"disconnect/{how}", max_s=60)]})
    call_in(line, dut)
    speech = speechlike(2.0, seed=7)
    line.play(np.concatenate([speech, np.zeros(PAUSE_MS * SAMPLE_RATE // 1000, dtype=np.int16)]))
    t_hang = time.time()
    line.hang_up(how=how)
    hangup = dut.wait_event("HANGUP", 30)
    budget = disconnect_budget_s(how, tol, SILENCE_S)
    took = hangup["t"] - t_hang
    assert took <= budget, f"{how}: HANGUP {took:.2f} s after the far end left (budget {budget:.2f} s)"
    assert line.wait_on_hook(10)
    [wav] = dut.wait_recordings(1, 15)
    rec = dut.read_recording(wav)
    end_part = speech[-SAMPLE_RATE // 2:]  # the caller's last words (the recording may start a moment late)
    lag, corr = locate(rec, end_part)
    assert corr > 0.9, f"the caller's audio is not in the recording (correlation {corr:.2f})"
    tail = (len(rec) - lag - len(end_part)) / SAMPLE_RATE
    # what followed the caller is cut: a tone or silence from where it began; a loop-current drop or BYE
    # leaves at most the time gatewayd needed to notice
    allowed = PAUSE_MS / 1000 + tol + (DETECTION_S[how] if how in (Disconnect.CPC, Disconnect.BYE) else 0.0)
    assert tail <= allowed, f"{how}: {tail:.2f} s after the caller's audio kept in the recording (max {allowed:.2f})"
    assert dut.events("ACTION_SUCCESSFUL", "RecordAudio") or dut.events("ACTION_FAILED", "RecordAudio") == []
