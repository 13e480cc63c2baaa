"""drivers/sip with baresip on loopback (inbound with a WAV and digits, outbound both ways, two-leg bridge
through the jitter buffer), dial failures, and ``gatewayd call`` against a driver instance and baresip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.line import (
    Answered,
    CallFailed,
    DigitReceived,
    DigitSource,
    IncomingCall,
    RemoteHangup,
    Ringing,
)
from media.frame import SAMPLE_RATE
from media.jitter import Bridge
from media.wav import read_wav, write_wav
from tests.integration.sip_peers import (
    Answerer,
    Baresip,
    RecPort,
    chirp,
    finish_sipp,
    free_port,
    match,
    noise,
    sipp_dir,
    start_sipp,
    started_line,
    write_scenario,
)

pytest.importorskip("pjsua2", reason="pjsua2 is the SIP stack under test (pip install gatewayd[sip])")
pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Noise shaped by a 4 Hz envelope: broadband (an unambiguous correlation peak) with pauses."""
    x = noise(seconds, seed).astype(np.float64)
    t = np.arange(len(x)) / SAMPLE_RATE
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    return (x * env).astype(np.int16)


@pytest.fixture
def baresip_wav(tmp_path: Path) -> tuple[Path, np.ndarray]:
    x = speechlike(4.0, seed=1)
    path = tmp_path / "baresip-in.wav"
    write_wav(path, x)
    return path, x


def test_baresip_calls_in_with_a_wav_and_digits(tmp_path: Path, baresip_wav: tuple[Path, np.ndarray]) -> None:
    wav, sent = baresip_wav
    bs = Baresip(tmp_path / "bs", wav)
    try:
        with started_line() as (line, events):
            answerer = Answerer(line, events)
            bs.dial(f"sip:4000@127.0.0.1:{line.local_port()}")
            inc = events.wait(IncomingCall)
            bs.wait_log("Call established", 15)
            time.sleep(0.5)
            for key in "1234*#":
                bs.send(key)
                time.sleep(0.35)
            hang = events.wait(RemoteHangup, inc.leg_id, timeout=30)  # baresip hangs up at the end of its file
    finally:
        bs.close()
    assert (inc.caller, inc.called) == ("bs", "4000")
    assert hang.reason == "bye"
    got = events.of(DigitReceived, inc.leg_id)
    assert [(d.digit, d.source) for d in got] == [(d, DigitSource.RFC4733) for d in "1234*#"]
    starts = [d.start_pts for d in got]
    assert all(s is not None for s in starts) and starts == sorted(starts)
    m = match(sent, answerer.ports[inc.leg_id].audio(), max_lag=SAMPLE_RATE)
    assert m.good(), m


def test_driver_dials_baresip_audio_both_ways(tmp_path: Path, baresip_wav: tuple[Path, np.ndarray]) -> None:
    wav, from_baresip = baresip_wav
    to_baresip = chirp(1.5)  # repeated: one whole repetition lands after the call set-up
    bs = Baresip(tmp_path / "bs", wav)
    port = RecPort(np.tile(to_baresip, 3))
    try:
        with started_line() as (line, events):
            line.dial("out-1", bs.uri, "+15550002222", {"X-Case": "dial"}, port, 20)
            events.wait(Ringing, "out-1")
            events.wait(Answered, "out-1")
            hang = events.wait(RemoteHangup, "out-1", timeout=30)
    finally:
        bs.close()
    assert hang.reason == "bye"
    assert "+15550002222" in bs.output()
    m_in = match(from_baresip, port.audio(), max_lag=SAMPLE_RATE)
    assert m_in.good(), m_in
    heard = read_wav(bs.received_wav())[SAMPLE_RATE:]  # the second repetition: clear of the call set-up
    m_out = match(to_baresip, heard, max_lag=int(1.5 * SAMPLE_RATE))
    assert m_out.good(), m_out


def test_bridge_two_legs_through_the_jitter_buffer(tmp_path: Path, baresip_wav: tuple[Path, np.ndarray]) -> None:
    """baresip -> trunk A (inbound leg) == bridge == outbound leg -> trunk B (far end playing a chirp)."""
    wav, from_baresip = baresip_wav
    far_plays = chirp(2.0, 400, 2500)
    bs = Baresip(tmp_path / "bs", wav)
    bridge = Bridge()
    try:
        with started_line(name="a") as (line_a, ev_a), started_line(name="b") as (line_b, ev_b):
            far = Answerer(line_b, ev_b, play=np.tile(far_plays, 3))

            def on_a(ev: object) -> None:
                if isinstance(ev, IncomingCall):
                    line_a.dial("bridged", line_b.local_uri("5000"), ev.caller, {}, bridge.b, 10)
                elif isinstance(ev, Answered) and ev.leg_id == "bridged":
                    line_a.answer(first_leg[0], bridge.a)

            first_leg: list[str] = []
            ev_a.on_event = lambda ev: (first_leg.append(ev.leg_id) if isinstance(ev, IncomingCall) else None,
                                        on_a(ev))
            bs.dial(f"sip:4000@127.0.0.1:{line_a.local_port()}")
            inc_b = ev_b.wait(IncomingCall)
            ev_a.wait(Answered, "bridged")
            ev_a.wait(RemoteHangup, first_leg[0], timeout=30)
            line_a.hangup("bridged")
            ev_b.wait(RemoteHangup, inc_b.leg_id)
    finally:
        bs.close()
    assert inc_b.called == "5000" and inc_b.caller == "bs"
    m_fwd = match(from_baresip, far.ports[inc_b.leg_id].audio(), max_lag=3 * SAMPLE_RATE)
    assert m_fwd.good(), m_fwd
    m_back = match(far_plays, read_wav(bs.received_wav())[SAMPLE_RATE:], max_lag=3 * SAMPLE_RATE)
    assert m_back.good(), m_back
    for jb in (bridge.a_to_b, bridge.b_to_a):
        st = jb.state()
        assert st.put > 100 and st.got > 100


def test_dial_refused_and_dial_not_answered(tmp_path: Path, baresip_wav: tuple[Path, np.ndarray]) -> None:
    cwd = sipp_dir(tmp_path)
    busy = write_scenario(cwd, "busy", """
  <recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
""")
    bs = Baresip(tmp_path / "bs", baresip_wav[0], answer=False)
    try:
        with started_line() as (line, events):
            uas_port = free_port()
            proc, err = start_sipp(cwd, "", "-sf", str(busy), local_port=uas_port, timeout=30)
            time.sleep(0.5)
            line.dial("busy", f"sip:1@127.0.0.1:{uas_port}", "", {}, RecPort(), 10)
            failed = events.wait(CallFailed, "busy")
            r = finish_sipp(proc, err, 30)
            assert r.returncode == 0, r.errors
            assert (failed.sip_code, failed.reason) == (486, "Busy Here")
            line.dial("late", bs.uri, "", {}, RecPort(), 1.5)
            events.wait(Ringing, "late")
            nobody = events.wait(CallFailed, "late", timeout=15)
            assert (nobody.sip_code, nobody.reason) == (480, "no answer")
            time.sleep(0.5)
            assert not events.of(Answered)
    finally:
        bs.close()


# ------------------------------------------------------------------ gatewayd call
def gatewayd(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gatewayd", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT, check=False)


@pytest.mark.parametrize("mode", ["rfc4733", "inband"])
def test_gatewayd_call_against_the_driver(tmp_path: Path, mode: str) -> None:
    sent = speechlike(3.0, seed=7)
    wav = tmp_path / "play.wav"
    write_wav(wav, sent)
    answer_with = chirp(2.0)
    out = tmp_path / "heard.wav"
    with started_line() as (line, events):
        answerer = Answerer(line, events, play=np.tile(answer_with, 3))
        r = gatewayd("call", f"sip:7000@127.0.0.1:{line.local_port()}", "--play", str(wav), "--digits", "123#",
                     "--digit-mode", mode, "--digits-at", "3.5", "--record", str(out), "--hangup-after", "6",
                     "--header", "X-Run=42", "--json")
        assert r.returncode == 0, r.stderr[-3000:]
        inc = events.wait(IncomingCall)
        hang = events.wait(RemoteHangup, inc.leg_id)
    report = json.loads(r.stdout)
    assert report["answered"] is True and report["hangup"] == "local"
    assert report["digits_sent"] == "123#" and report["digit_mode"] == mode
    assert report["recording"] == str(out) and 5.5 <= report["recorded_s"] <= 6.5
    assert hang.reason == "bye" and inc.headers == {"X-Run": "42"} and inc.called == "7000"
    rec = answerer.ports[inc.leg_id].audio()
    m = match(sent, rec, max_lag=SAMPLE_RATE)
    assert m.good(), m
    m_back = match(answer_with, read_wav(out)[SAMPLE_RATE:], max_lag=2 * SAMPLE_RATE)  # a repetition clear of set-up
    assert m_back.good(), m_back
    got = events.of(DigitReceived, inc.leg_id)
    if mode == "rfc4733":
        assert [(d.digit, d.source) for d in got] == [(d, DigitSource.RFC4733) for d in "123#"]
    else:
        assert got == []  # in-band: the tones are in the audio, for the media pipeline's detector
        assert decode_dtmf(rec, tmp_path) == "123#"


def decode_dtmf(samples: np.ndarray, tmp: Path) -> str:
    """DTMF in a recording, by multimon-ng (an independent decoder), via sox to its 22050 Hz raw input."""
    for tool in ("sox", "multimon-ng"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (tools/dev installs it)")
    wav = tmp / "dtmf.wav"
    write_wav(wav, samples)
    raw = subprocess.run(["sox", str(wav), "-t", "raw", "-r", "22050", "-e", "signed", "-b", "16", "-c", "1", "-"],
                         capture_output=True, check=True).stdout
    out = subprocess.run(["multimon-ng", "-q", "-t", "raw", "-a", "DTMF", "-"], input=raw, capture_output=True,
                         check=True).stdout.decode()
    return "".join(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("DTMF:"))


def test_gatewayd_call_against_baresip(tmp_path: Path, baresip_wav: tuple[Path, np.ndarray]) -> None:
    wav, from_baresip = baresip_wav
    bs = Baresip(tmp_path / "bs", wav)
    out = tmp_path / "heard.wav"
    try:
        r = gatewayd("call", bs.uri, "--record", str(out), "--max-seconds", "20", "--json")
    finally:
        bs.close()
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout)
    assert report["answered"] is True and report["hangup"] == "remote-bye"
    m = match(from_baresip, read_wav(out), max_lag=SAMPLE_RATE)
    assert m.good(), m


def test_gatewayd_call_reports_a_refused_call(tmp_path: Path) -> None:
    with started_line(allowed_peers=("10.9.9.9",)) as (line, _events):
        r = gatewayd("call", f"sip:1@127.0.0.1:{line.local_port()}", "--json")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert report["answered"] is False and report["sip_code"] == 403


def test_gatewayd_call_bad_arguments() -> None:
    r = gatewayd("call", "sip:1@127.0.0.1:5", "--digits", "12x")
    assert r.returncode == 2 and "not DTMF digits" in r.stderr
    r = gatewayd("call", "http://example.com")
    assert r.returncode == 2 and "not a sip: URI" in r.stderr
