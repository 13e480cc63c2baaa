"""LabSimulator's decisions that need no call: what each ATA profile can give, the hints when it cannot,
and the refusals (the SIP side is tested against gatewayd in tests/integration/test_hil_lab_sip.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from drivers.line import DigitReceived, DigitSource
from hil.backends.lab import LabSimulator, NotOnThisRig, capabilities_of
from hil.rig import Rig, load_rig
from hil.simulator import CallerId, CidFaults, CidMode, Disconnect, LineConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "hil" / "rig.example.yaml"


def with_profile(rig: Rig, name: str) -> Rig:
    return dataclasses.replace(rig, ata=dataclasses.replace(rig.ata, active_profile=name))


@pytest.fixture
def rig() -> Rig:
    return load_rig(EXAMPLE)


def test_capabilities_follow_the_active_profile(rig: Rig) -> None:
    assert {"cid-fsk", "disconnect-cpc"} <= capabilities_of(rig)
    uk = capabilities_of(with_profile(rig, "uk-etsi-fsk"))
    assert {"cid-fsk", "cid-before-ring", "disconnect-cpc"} <= uk
    clip = capabilities_of(with_profile(rig, "dtmf-clip"))
    assert {"cid-dtmf", "cid-before-ring", "disconnect-polarity"} <= clip and "disconnect-cpc" not in clip
    busy = capabilities_of(with_profile(rig, "us-busy-only"))
    assert "disconnect-cpc" not in busy and "disconnect-tones" in busy
    assert all("sip" not in c for c in (uk, clip, busy))


def test_default_config_is_the_profile(rig: Rig) -> None:
    sim = LabSimulator(with_profile(rig, "uk-etsi-fsk"))
    cfg = sim.default_config
    assert (cfg.country, cfg.cid, cfg.disconnect, cfg.cpc_ms) == ("uk", CidMode.ETSI_FSK_BEFORE_RING,
                                                                  Disconnect.CPC, 400)
    assert cfg.ring_cadence == (0.4, 0.2, 0.4, 2.0)
    sim.configure(cfg)  # the profile's own line is always possible
    sim.configure(dataclasses.replace(cfg, disconnect=Disconnect.BUSY))  # tones are sent over RTP


def test_a_line_the_ata_is_not_set_for_names_the_profile_that_is(rig: Rig) -> None:
    sim = LabSimulator(rig)
    with pytest.raises(NotOnThisRig, match=r"caller ID etsi-dtmf.*profile 'dtmf-clip'"):
        sim.configure(LineConfig(country="se", cid=CidMode.ETSI_DTMF, disconnect=Disconnect.POLARITY))
    with pytest.raises(NotOnThisRig, match=r"disconnect polarity \(the ATA does cpc\)"):
        sim.configure(LineConfig(disconnect=Disconnect.POLARITY))
    with pytest.raises(NotOnThisRig, match="no profile in the rig file gives it"):
        sim.configure(LineConfig(cid=CidMode.BELL202_SDMF))
    with pytest.raises(NotOnThisRig, match="ring cadence"):
        sim.configure(LineConfig(ring_cadence=(0.5, 1.5)))


def test_refusals_before_any_call(rig: Rig) -> None:
    sim = LabSimulator(rig)
    with pytest.raises(NotOnThisRig, match="TLE-A"):
        sim.ring(CallerId("5551234"), cid_faults=CidFaults(bad_checksum=True))
    with pytest.raises(NotOnThisRig, match="out of area"):
        sim.ring(CallerId(None, number_absent="O"))
    with pytest.raises(RuntimeError, match="no answered call"):
        sim.play(np.zeros(160, dtype=np.int16))
    assert not sim.off_hook and list(sim.events()) == []
    sim.hang_up()  # nothing to hang up: no error
    sim.abandon()


def test_remote_dut_only_for_the_settings_the_pi_has(rig: Rig) -> None:
    @dataclasses.dataclass(frozen=True)
    class Settings:  # the fields of hil.dut.DutSettings the rig declares
        rings_before_answer: int = 2
        silence_hangup_s: float = 30.0
        max_call_s: float = 120.0

    sim = LabSimulator(rig)
    assert sim.remote_dut(Settings()).cfg is rig.dut
    with pytest.raises(NotOnThisRig, match=r"rings_before_answer 4 \(the Pi has 2\)"):
        sim.remote_dut(Settings(rings_before_answer=4))


def test_a_key_press_sent_both_ways_by_the_far_end_is_heard_once(rig: Rig) -> None:
    sim = LabSimulator(rig)
    sim._leg = "leg"  # as during a call: events of this leg count
    sim._on_line_event(DigitReceived("hil-lab", "leg", "5", DigitSource.RFC4733))
    t = next(iter(sim.events())).t
    sim._digit("5", t + 0.1, "inband")  # the same press, in the audio
    sim._digit("5", t + 0.9, "inband")  # the next press of the same key
    sim._on_line_event(DigitReceived("hil-lab", "other-leg", "7", DigitSource.RFC4733))  # not this call
    assert [(e.kind, e.detail) for e in sim.events()] == [("dtmf-from-dut", "5")] * 2


def test_rings_after_the_first_are_estimated_from_the_cadence(rig: Rig) -> None:
    sim = LabSimulator(rig)  # us: 2 s on, 4 s off
    sim._first_ring_at = 1.0
    sim._note("ring", "180 from the ATA (first ring)", 1.0)
    assert sim._estimated_rings(14.0) == 3
    rings = [(e.t, e.detail) for e in sim.events() if e.kind == "ring"]
    assert rings == [(1.0, "180 from the ATA (first ring)"), (7.0, "estimated from the cadence"),
                     (13.0, "estimated from the cadence")]
    assert sim._estimated_rings(14.5) == 3 and len(list(sim.events())) == 3  # not added twice
    uk = LabSimulator(with_profile(rig, "uk-etsi-fsk"))  # 3 s cycle
    uk._first_ring_at = 0.0
    assert uk._estimated_rings(7.0) == 3
