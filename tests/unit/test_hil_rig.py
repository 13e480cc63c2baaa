"""hil/rig.py: the documented example loads; mistakes are reported with file:line:col and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.backends.lab import capabilities_of
from hil.labcheck import main as labcheck
from hil.rig import ConfigError, load_rig, load_rig_text
from hil.simulator import CidMode, Disconnect

EXAMPLE = Path(__file__).resolve().parents[2] / "hil" / "rig.example.yaml"

MINIMAL = """\
dut:
  bucket: /mnt/pi
ata:
  address: 192.0.2.7
  active_profile: us
  profiles:
    - name: us
"""


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        load_rig_text(text, "rig.yaml")
    return [str(p) for p in ei.value.problems]


def test_the_example_loads_and_says_what_the_bench_can_do() -> None:
    rig = load_rig(EXAMPLE)
    assert rig.ata.profile.name == "us-bell202" and rig.ata.profile.cid is CidMode.BELL202_MDMF
    assert rig.ata.target_uri() == "sip:hil@192.168.1.50:5060"
    assert rig.tle_a is None and rig.country == "us"
    assert capabilities_of(rig) == {"ring", "cid-fsk", "disconnect-cpc", "disconnect-tones", "inband-dtmf",
                                    "offnominal-dtmf"}
    uk = next(p for p in rig.ata.profiles if p.name == "uk-etsi-fsk")
    assert uk.cid is CidMode.ETSI_FSK_BEFORE_RING and uk.ring_cadence == (0.4, 0.2, 0.4, 2.0)
    assert uk.settings["Loop Current Disconnect Duration"] == 400


def test_minimal_rig_defaults() -> None:
    rig = load_rig_text(MINIMAL)
    assert rig.ata.model == "grandstream-ht802" and rig.ata.profile.disconnect is Disconnect.CPC
    assert rig.tolerances.timing_s == 0.15 and rig.controller.bind_address == ""


def test_a_tle_a_section_loads_but_claims_nothing_the_backend_does_not_drive() -> None:
    rig = load_rig_text(MINIMAL + "tle_a:\n  port: /dev/ttyUSB0\n  commands: {ring: 10}\n")
    assert rig.tle_a is not None and rig.tle_a.commands == {"ring": 10} and rig.tle_a.baud == 9600
    assert capabilities_of(rig) == capabilities_of(load_rig_text(MINIMAL))
    assert "cid-faults" not in capabilities_of(rig)


@pytest.mark.parametrize(("text", "expected"), [
    (MINIMAL.replace("  bucket: /mnt/pi\n", ""), "rig.yaml:1:5: dut: missing required key 'bucket'"),
    (MINIMAL.replace("address:", "adress:"), "rig.yaml:4:3: ata: unknown key 'adress' (did you mean 'address'?)"),
    (MINIMAL.replace("active_profile: us", "active_profile: uk"),
     "rig.yaml:5:19: ata.active_profile: 'uk' is not a profile; known: us"),
    (MINIMAL + "    - name: us\n", "rig.yaml:7:5: ata.profiles: duplicate profile name(s): us"),
    (MINIMAL.replace("address: 192.0.2.7", "address: ata.lab"), "ata.address: 'ata.lab' is not an IP address"),
    (MINIMAL.replace("address: 192.0.2.7", "registrar: sip:pbx"),
     "ata.account: calling through a registrar needs the controller's account"),
    (MINIMAL + "    - name: x\n      cid: bell202\n",
     "ata.profiles[1].cid: must be 'bell202-mdmf' or 'bell202-sdmf' or 'etsi-fsk-before-ring' or 'etsi-dtmf' "
     "or 'none', not 'bell202'"),
    (MINIMAL + "      ring_cadence: [2.0]\n", "ata.profiles[0].ring_cadence: needs on/off pairs"),
    (MINIMAL + "      disconnect: flash\n", "ata.profiles[0].disconnect: must be"),
    (MINIMAL + "  fxs_port: 0\n", "rig.yaml:8:13: ata.fxs_port: must be >= 1, got 0"),
    (MINIMAL.replace("/mnt/pi", "s3://"), "dut.bucket: 's3://' has no bucket name"),
    (MINIMAL + "tle_a: {baud: 9600}\n", "tle_a: missing required key 'port'"),
    (MINIMAL + "tolerances: {timing_s: -1}\n", "tolerances.timing_s: must be >= 0, got -1"),
    (MINIMAL + "tones: {country: xx}\n", "tones.country: must be 'us' or 'uk'"),
    ("dut: [\n", "rig.yaml:2:1: YAML syntax error"),
    (MINIMAL.replace("  bucket: /mnt/pi\n", "  bucket: /mnt/pi\n  path: sip\n"),
     "rig.yaml:2:3: dut: path 'sip' does not fit ata.model 'grandstream-ht802'"),
    (MINIMAL.replace("  bucket: /mnt/pi\n", "  bucket: /mnt/pi\n  script_file: /mnt/s.json\n"),
     "dut.script_file: script_file and transcript_file go together"),
])
def test_errors_name_the_place_and_the_key(text: str, expected: str) -> None:
    got = errors(text)
    assert any(expected in e for e in got), got


def test_every_problem_is_reported_at_once() -> None:
    got = errors(MINIMAL.replace("address:", "adress:") + "  fxs_port: 9\ntolerances: {timing_s: -1}\n")
    assert len(got) == 3, got


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_rig(tmp_path / "nope.yaml")


def test_labcheck_summarises_a_rig_or_rejects_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert labcheck([str(EXAMPLE)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["profile"] == "us-bell202" and "disconnect-cpc" in doc["summary"]["capabilities"]
    bad = tmp_path / "rig.yaml"
    bad.write_text(MINIMAL.replace("address:", "adress:"))
    assert labcheck([str(bad)]) == 78
    assert f"{bad}:4:3: ata: unknown key 'adress'" in capsys.readouterr().err
