"""HARDWARE.md §5.6 1–2: caller ID and its variants reach the handler's CallDetails (or are absent), the
answer comes on the configured ring, and a broken spill never breaks the call."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hil.dut import Dut
from hil.scenarios.steps import CALLER, hangup, participant, pause
from hil.simulator import NO_FAULTS, CallerId, CidFaults, CidMode, LineSimulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def presented(line: LineSimulator, dut: Dut, caller: CallerId | None, faults: CidFaults = NO_FAULTS) -> str:
    """Ring with ``caller``; the handler hangs up at once. Returns the From the handler saw."""
    dut.set_script({"NEW_INBOUND_CALL": [pause(200), hangup()]})
    call = line.ring(caller, cid_faults=faults)
    assert line.wait_answered(20), f"not answered; DUT log:\n{dut.log_text()[-3000:]}"
    entry = dut.wait_event("NEW_INBOUND_CALL", 10)
    dut.wait_event("HANGUP", 10)
    assert line.wait_on_hook(10)
    assert len(dut.events("NEW_INBOUND_CALL")) == 1
    if "ring" in line.capabilities:
        assert call.rings == 2, call  # rings_before_answer: 2, and never later because caller ID was awaited
    return str(participant(entry).get("From", ""))


@pytest.mark.requires("cid-fsk")
@pytest.mark.hil_line(cid=CidMode.BELL202_MDMF)
def test_mdmf_number_reaches_the_handler(line: LineSimulator, dut: Dut) -> None:
    assert presented(line, dut, CALLER) == CALLER.number


@pytest.mark.requires("cid-fsk")
@pytest.mark.hil_line(cid=CidMode.BELL202_SDMF)
def test_sdmf_number_reaches_the_handler(line: LineSimulator, dut: Dut) -> None:
    assert presented(line, dut, replace(CALLER, name=None)) == CALLER.number


@pytest.mark.requires("cid")
def test_caller_number_reaches_the_handler(line: LineSimulator, dut: Dut) -> None:
    """Whatever the path's signalling (FSK spill, modem report, SIP From), the number arrives."""
    assert presented(line, dut, CallerId(number="5559870001")) == "5559870001"


@pytest.mark.requires("cid-before-ring")
@pytest.mark.hil_line(country="uk", cid=CidMode.ETSI_FSK_BEFORE_RING)
def test_uk_caller_id_before_the_first_ring(line: LineSimulator, dut: Dut) -> None:
    assert presented(line, dut, CallerId(number="01632960123", name="SMITH J")) == "01632960123"


@pytest.mark.requires("cid-dtmf")
@pytest.mark.hil_line(cid=CidMode.ETSI_DTMF)
def test_dtmf_clip_number_reaches_the_handler(line: LineSimulator, dut: Dut) -> None:
    assert presented(line, dut, CallerId(number="5551230001")) == "5551230001"


@pytest.mark.requires("cid-absent")
@pytest.mark.parametrize(("absent", "expected"), [("P", "anonymous"), ("O", "")])
def test_withheld_and_unavailable(line: LineSimulator, dut: Dut, absent: str, expected: str) -> None:
    caller = CallerId(number=None, name=None, number_absent=absent, name_absent=absent)  # type: ignore[arg-type]
    got = presented(line, dut, caller)
    if "sip" in line.capabilities:
        assert got == "anonymous"  # SIP has only one way to withhold a number
    else:
        assert got == expected


@pytest.mark.requires("ring")
def test_no_caller_id(line: LineSimulator, dut: Dut) -> None:
    assert presented(line, dut, None) == ""


@pytest.mark.requires("cid-faults")
def test_bad_checksum_is_not_trusted_and_the_call_goes_on(line: LineSimulator, dut: Dut) -> None:
    got = presented(line, dut, CALLER, CidFaults(bad_checksum=True))
    assert got == ""
    assert dut.alive


@pytest.mark.requires("cid-late")
@pytest.mark.hil_dut(cid_after_ring=2)
def test_caller_id_after_the_second_ring(line: LineSimulator, dut: Dut) -> None:
    assert presented(line, dut, CALLER, CidFaults(after_ring=2)) == CALLER.number
