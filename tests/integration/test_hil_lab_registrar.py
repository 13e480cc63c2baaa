"""The lab backend calling through a registrar (ata.registrar: a PBX between the controller and the ATA),
against SIPp playing the PBX: the controller registers its account first, then dials the ATA port's
number at the registrar with the caller ID in From; SIPp checks the Request-URI and From."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gatewayd.testing.sipp import sipp_reply
from hil.rig import load_rig_text
from hil.simulator import CallerId
from tests.integration.sip_peers import finish_sipp, free_port, sipp_dir, start_sipp, write_scenario

pytest.importorskip("pjsua2", reason="pjsua2 is the SIP stack of the lab backend (pip install gatewayd[sip])")
pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

# Every new Call-ID starts the scenario again: a REGISTER takes the "reg" branch, an INVITE the call.
# (SIPp's XML parser wants each tag on one line.)
PBX = """
  <recv request="REGISTER" optional="true" next="reg"/>
  <recv request="INVITE">
    <action>
      <ereg regexp="^INVITE sip:201@127.0.0.1:[0-9]+ SIP/2.0" check_it="true" assign_to="u"/>
      <ereg regexp="From: &quot;LAB CALLER&quot; &lt;sip:5550001@127.0.0.1&gt;" check_it="true" assign_to="f"/>
    </action>
  </recv>
  <Reference variables="u,f"/>
""" + sipp_reply("180 Ringing", "Contact: <sip:201@[local_ip]:[local_port]>") + """\
  <pause milliseconds="1500"/>
""" + sipp_reply("200 OK", "Contact: <sip:201@[local_ip]:[local_port]>", attrs='retrans="500"', sdp="""
      v=0
      o=pbx 1 1 IN IP4 [media_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
""") + """\
  <recv request="ACK"/>
  <recv request="BYE"/>
""" + sipp_reply("200 OK", to_tag=False, attrs='next="end"') + """\
  <label id="reg"/>
""" + sipp_reply("200 OK", "[last_Contact:];expires=300") + """\
  <label id="end"/>
"""


def test_registers_then_dials_the_ata_port_at_the_registrar(tmp_path: Path) -> None:
    from hil.backends.lab import LabSimulator

    cwd = sipp_dir(tmp_path)
    scen = write_scenario(cwd, "pbx", PBX)
    pbx_port = free_port()
    proc, err = start_sipp(cwd, "", "-sf", str(scen), local_port=pbx_port, timeout=40, calls=2)
    rig = load_rig_text(f"""
dut: {{bucket: {tmp_path}/bucket}}
ata:
  registrar: sip:127.0.0.1:{pbx_port}
  account: hil-controller
  password: secret
  user: "201"
  active_profile: us
  profiles: [{{name: us}}]
controller: {{bind_address: 127.0.0.1}}
""")
    try:
        time.sleep(0.5)
        with LabSimulator(rig) as sim:
            sim.start()  # returns once registered (or raises)
            assert sim.registered
            call = sim.ring(CallerId("5550001", "LAB CALLER"))
            assert sim.wait_answered(15), list(sim.events())
            kinds = [e.kind for e in sim.events()]
            assert kinds.index("ring") < kinds.index("answered") and kinds.count("ring") == call.rings == 1
            assert call.answered_at is not None and call.answered_at >= 1.4  # SIPp rang 1.5 s
            sim.hang_up()
            assert not sim.off_hook
            time.sleep(0.5)  # let the BYE's answer come back before the line unregisters
    finally:
        r = finish_sipp(proc, err, 40)
    assert r.returncode == 0, r.errors[-3000:]
