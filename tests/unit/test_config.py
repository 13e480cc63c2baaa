"""Config loading: typed values, every error as file:line:col, exit code 78, schema in step."""

import json
from pathlib import Path

import pytest

from gatewayd.cli import main
from gatewayd.config import EX_CONFIG, ConfigError, SipLineConfig, load_config, load_config_text
from gatewayd.config.schema import config_schema

ROOT = Path(__file__).resolve().parents[2]


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        load_config_text(text, "c.yaml")
    return [str(p) for p in ei.value.problems]


def test_embedded_config_loads() -> None:
    cfg = load_config(ROOT / "config" / "gatewayd.yaml")
    assert isinstance(cfg.lines[0], SipLineConfig)
    assert cfg.lines[0].bind_address == "127.0.0.1"
    assert cfg.applications[0].handler.startswith("python:")
    assert cfg.state_dir == ROOT / "config" / "var"


def test_unknown_key_has_position_and_suggestion() -> None:
    text = "lines:\n  - name: a\n    type: sip\n    prot: 5070\n"
    assert errors(text) == ["c.yaml:4:5: lines[0]: unknown key 'prot' (did you mean 'port'?)"]


def test_wrong_types_and_bounds_are_all_reported() -> None:
    text = ("lines:\n  - {name: a, type: sip, port: 70000, transports: [udp, sctp]}\n"
            "applications:\n  - {name: x, handler: 'python:m:f', timeout_s: fast}\n")
    got = errors(text)
    assert "c.yaml:2:32: lines[0].port: must be <= 65535, got 70000" in got
    assert any(e.startswith("c.yaml:2:57: lines[0].transports[1]: must be 'udp' or 'tcp', not 'sctp'") for e in got)
    assert "c.yaml:4:49: applications[0].timeout_s: expected a number, got 'fast'" in got


def test_union_needs_a_known_type_with_suggestion() -> None:
    assert errors("lines:\n  - name: a\n    type: sipp\n") == [
        "c.yaml:3:11: lines[0].type: must be one of 'sip', 'modem', 'fxo', not 'sipp' (did you mean 'sip'?)"]
    assert errors("lines:\n  - name: a\n") == [
        "c.yaml:2:5: lines[0]: missing required key 'type' (one of 'sip', 'modem', 'fxo')"]


def test_missing_required_key() -> None:
    assert errors("lines:\n  - {type: modem, name: m}\n") == [
        "c.yaml:2:5: lines[0]: missing required key 'device'"]


def test_cross_references_are_checked() -> None:
    text = ("lines: [{name: a, type: sip}, {name: a, type: sip, port: 5062}]\n"
            "rules:\n  - name: r\n    trigger_type: Line\n    trigger_value: b\n"
            "    target_applications: [{application: nope}]\n")
    got = errors(text)
    assert "c.yaml:1:38: duplicate line name 'a'" in got
    assert "c.yaml:5:20: unknown line 'b'" in got
    assert "c.yaml:6:41: unknown application 'nope'" in got


def test_numbers_where_strings_belong_are_refused_with_advice() -> None:
    got = errors("lines: [{name: m, type: modem, device: /dev/x, number: 0123}]\n")
    assert got == ['c.yaml:1:56: lines[0].number: expected a string, got the number 0123; quote it ("0123")']


def test_yaml_syntax_error_has_position() -> None:
    got = errors("lines:\n  - name: [unclosed\n")
    assert len(got) == 1 and got[0].startswith("c.yaml:3:1: YAML syntax error")


def test_multi_field_check() -> None:
    # the SIP driver's own validation, reported at the field it names
    got = errors("lines: [{name: a, type: sip, rtp_port: 20000, rtp_port_range: 2}]\n")
    assert got == ["c.yaml:1:63: lines[0].rtp_port_range: rtp_port_range must leave room for at least two calls (>= 4)"]
    got = errors("lines: [{name: a, type: sip, allowed_peers: [10.0.0.300]}]\n")
    assert len(got) == 1 and got[0].startswith("c.yaml:1:45: lines[0].allowed_peers:")


def test_fxo_line_answering_before_a_late_caller_id_is_refused() -> None:
    text = ("lines:\n  - {type: fxo, name: f, control_device: /dev/x, audio_device: a, cid_after_ring: 2,\n"
            "     rings_before_answer: 1}\n")
    assert errors(text) == ["c.yaml:3:27: lines[0].rings_before_answer: 1 is before the caller ID, which follows "
                            "ring 2 (cid_after_ring): set it to at least 2"]
    ok = load_config_text(text.replace("rings_before_answer: 1", "rings_before_answer: 2"), "c.yaml")
    assert ok.lines[0].cid_after_ring == 2  # type: ignore[union-attr]
    assert errors(text.replace("cid_after_ring: 2", "cid_after_ring: 0")) == [
        "c.yaml:2:83: lines[0].cid_after_ring: must be >= 1, got 0"]


def test_check_config_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications:\n  - name: x\n    handlr: python:m:f\n")
    assert main(["check-config", str(bad)]) == EX_CONFIG
    err = capsys.readouterr().err
    assert f"{bad}:3:5: applications[0]: unknown key 'handlr' (did you mean 'handler'?)" in err
    assert f"{bad}:2:5: applications[0]: missing required key 'handler'" in err
    assert main(["check-config", str(tmp_path / "missing.yaml")]) == EX_CONFIG
    assert main(["check-config", str(ROOT / "config" / "gatewayd.yaml")]) == 0


def test_committed_schema_is_generated_from_the_model() -> None:
    committed = json.loads((ROOT / "config" / "gatewayd.schema.json").read_text())
    assert committed == config_schema(), "run: gatewayd config-schema > config/gatewayd.schema.json"


def test_example_config_is_generated_documents_every_key_and_loads() -> None:
    from dataclasses import fields, is_dataclass
    from typing import get_args, get_type_hints

    from gatewayd.config.example import example_yaml
    from gatewayd.config.loader import yaml_key
    from gatewayd.config.model import Config

    path = ROOT / "config" / "gatewayd.example.yaml"
    text = path.read_text()
    assert text == example_yaml(), "run: gatewayd config-schema --example > config/gatewayd.example.yaml"
    cfg = load_config(path)
    assert {type(ln).__name__ for ln in cfg.lines} == {"SipLineConfig", "ModemLineConfig", "FxoLineConfig"}

    def classes(tp: object) -> list[type]:
        if is_dataclass(tp):
            return [tp]  # type: ignore[list-item]
        return [c for a in get_args(tp) for c in classes(a)]

    seen: set[type] = set()
    todo: list[type] = [Config]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        hints = get_type_hints(cls)
        for f in fields(cls):
            assert f"{yaml_key(f.name)}:" in text, f"{cls.__name__}.{f.name} is not documented in the example"
            assert "doc" in f.metadata or f.name == "type", f"{cls.__name__}.{f.name} has no doc"
            todo += classes(hints[f.name])
    assert len(seen) == 11  # Config and every section


def test_explicit_null_disables_the_metrics_listener() -> None:
    assert load_config_text("metrics:\n  address: null\n", "c.yaml").metrics.address is None
    assert load_config_text("metrics: {}\n", "c.yaml").metrics.address == "127.0.0.1:9464"
