"""Analysers for `gatewayd analyze`: call-progress and caller-ID sections (media/line_analysis.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from media.callerid import Message, modulate, render_dtas
from media.frame import SAMPLE_RATE, Samples, frames
from media.g711 import alaw_roundtrip
from media.line_analysis import CallerIdAnalyser, ProgressAnalyser
from media.progress import render_tone


@dataclass(frozen=True)
class Options:  # the fields media.analysis.AnalysisOptions would carry
    country: str | None = None
    cid_standard: str | None = None


def run(analyser: Any, x: Samples) -> tuple[Any, list[str]]:
    for f in frames(x, pad=False):
        analyser.process(f)
    result = analyser.finish(round(len(x) / SAMPLE_RATE, 3))
    json.dumps(result)  # serialisable
    return result, analyser.describe(result)


def uk_call() -> Samples:
    """BT style: DT-AS, V.23 caller ID without seizure, ringing (not audible on the line here), then
    the far end hangs up into busy tone, which lasts to the end of the recording."""
    z = np.zeros
    x = np.concatenate([z(4000, np.int16), render_dtas(-15.0, 0.1), z(800, np.int16),
                        modulate(Message.mdmf(when="06061206", number="01632960000", name="A CALLER"), "v23",
                                 seizure_bits=0, mark_bits=80),
                        z(16000, np.int16), render_tone("uk", "busy", 4.0), render_tone("uk", "dial", 2.0)])
    return alaw_roundtrip(x)


def test_call_progress_section() -> None:
    x = uk_call()
    busy_at = len(x) - 6 * SAMPLE_RATE
    result, lines = run(ProgressAnalyser(Options(country="gb")), x)
    assert result["country"] == "uk"
    ev = result["events"]
    assert [e["kind"] for e in ev] == ["busy", "dial"]
    assert abs(ev[0]["start"] - busy_at / SAMPLE_RATE) < 0.02
    assert ev[0]["start"] < ev[0]["detected"] < ev[0]["end"] <= ev[1]["start"] + 0.4
    assert ev[1]["end"] is None  # still on when the file ends
    assert lines[0] == "call progress (uk): 2 tone(s)" and "busy" in lines[1] and "end of file" in lines[2]


def test_call_progress_defaults_to_nanp_without_options() -> None:
    result, _ = run(ProgressAnalyser(None), render_tone("us", "congestion", 3.0))
    assert result["country"] == "us" and [e["kind"] for e in result["events"]] == ["congestion"]


def test_caller_id_section_identifies_the_standard_and_lists_dtas() -> None:
    result, lines = run(CallerIdAnalyser(Options()), uk_call())
    [alert] = result["dtas"]
    assert abs(alert["start"] - 0.5) < 0.006 and abs(alert["end"] - 0.6) < 0.006
    [m] = result["messages"]
    assert m["standard"] == "v23" and m["number"] == "01632960000" and m["name"] == "A CALLER"
    assert m["datetime"] == "06061206" and m["checksum_ok"] and m["error"] == "" and m["type"] == 0x80
    assert bytes.fromhex(m["raw"]) == Message.mdmf(when="06061206", number="01632960000", name="A CALLER").encode()
    assert lines[0] == "caller ID: 1 message(s), 1 DT-AS" and "01632960000" in lines[2] and "[ok]" in lines[2]


def test_caller_id_section_reports_bad_messages() -> None:
    m = Message.sdmf(absent="P", when="01011200")
    x = np.concatenate([np.zeros(2000, np.int16), modulate(m, "bell202", bad_checksum=True),
                        np.zeros(2000, np.int16)])
    result, lines = run(CallerIdAnalyser(Options(cid_standard="bell202")), x)
    [msg] = result["messages"]
    assert msg["standard"] == "bell202" and msg["error"] == "checksum" and not msg["checksum_ok"]
    assert msg["number_absent"] == "P" and "absent (P)" in lines[1] and "[checksum]" in lines[1]
