"""The lab backend's SIP side (hil/backends/lab.py) against gatewayd's own SIP trunk.

On the bench, LabSimulator calls an ATA whose FXS port rings the Pi. Here a real ``gatewayd run``
subprocess with a SIP line on loopback and an in-process IVR (tests/integration/lab_dut_handler.py)
stands in for "ATA + Pi": the rig file's ATA entry is ``model: direct-sip`` pointing straight at that
trunk. The simulator rings, waits for the answer, records what the DUT sends (its prompt), plays speech,
sends digits in-band and as RFC 4733 events, ends the recording with ``#``; the DUT hangs up. A second
call is ended by the simulator. Everything asserted is what gatewayd shows from outside: its recordings
in the local bucket, its handler transcript, its status socket and metrics, and what the simulator heard.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gatewayd.testing.prometheus import scrape_url
from hil.backends.lab_dut import LabDut
from hil.rig import Rig, load_rig
from hil.simulator import CallerId, Disconnect, LineConfig
from media.dtmf import DtmfSender
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, AudioFrame
from media.progress import ProgressDetector, ToneKind
from media.wav import read_wav
from tests.integration.daemon_proc import (
    RECORDINGS,
    DaemonProc,
    bucket_files,
    child_env,
    running_daemon,
    sip_config,
)
from tests.integration.sip_peers import chirp, free_port, match, speechlike

pytest.importorskip("pjsua2", reason="pjsua2 is the SIP stack of the lab backend (pip install gatewayd[sip])")
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PROMPTS = "lab-prompts"


def _rig_text(workdir: Path, trunk_port: int, d: DaemonProc, metrics: str, budget_s: float) -> str:
    return f"""
name: ci-loopback
dut:
  name: gatewayd-subprocess
  line: trunk
  path: sip
  sip_uri: sip:lab@127.0.0.1:{trunk_port}
  bucket: {workdir}/buckets/{RECORDINGS}
  status_socket: {d.status_socket}
  metrics_url: http://{metrics}/metrics
  log_command: [cat, {d.stderr_path}]
  script_file: {workdir}/script.json
  transcript_file: {workdir}/transcript.jsonl
  prompts_dir: {workdir}/buckets/{PROMPTS}
ata:
  model: direct-sip
  address: 127.0.0.1
  sip_port: {trunk_port}
  user: lab
  active_profile: loopback
  profiles:
    - {{name: loopback, cid: none, disconnect: bye}}
controller:
  bind_address: 127.0.0.1
tones:
  country: us
tolerances:
  disconnect_budget_s: {budget_s}
"""


def _transcript(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def _dut(tmp_path: Path, budget_s: float = 12.0, **env: str) -> Iterator[tuple[DaemonProc, Rig, np.ndarray, Path]]:
    """gatewayd with the lab IVR on a loopback SIP trunk, and the rig file pointing at it."""
    port = free_port()
    metrics = f"127.0.0.1:{free_port()}"
    prompt = chirp(2.0, 300, 3000, level=6000)
    transcript = tmp_path / "transcript.jsonl"
    cfg = sip_config(tmp_path, port, handler="python:tests.integration.lab_dut_handler:handler",
                     environment={"LAB_TRANSCRIPT": str(transcript), "LAB_PROMPT_BUCKET": PROMPTS,
                                  "LAB_PROMPT_KEY": "lab/prompt.wav", "LAB_RECORDINGS_BUCKET": RECORDINGS, **env})
    cfg["buckets"].append({"name": PROMPTS, "type": "local", "root": str(tmp_path / "buckets")})
    cfg["metrics"] = {"address": metrics}
    with running_daemon(tmp_path / "dut", cfg) as d:
        rig_path = tmp_path / "rig.yaml"
        rig_path.write_text(_rig_text(tmp_path, port, d, metrics, budget_s))
        rig = load_rig(rig_path)
        LabDut(rig.dut).put_prompt("lab/prompt.wav", prompt)  # as a scenario puts its prompts on the Pi
        yield d, rig, prompt, transcript


@pytest.fixture
def dut(tmp_path: Path) -> Iterator[tuple[DaemonProc, Rig, np.ndarray, Path]]:
    with _dut(tmp_path) as parts:
        yield parts


def test_lab_simulator_rings_talks_and_records_through_gatewayds_trunk(dut: Any, tmp_path: Path) -> None:
    from hil.backends.lab import LabSimulator, NotOnThisRig

    d, rig, prompt, _ = dut
    assert isinstance(rig, Rig)
    speech = speechlike(3.0, seed=7)
    results = tmp_path / "results"
    with LabSimulator(rig, results_dir=results) as sim:
        assert "sip" in sim.capabilities and "disconnect-cpc" not in sim.capabilities
        sim.configure(LineConfig(country="us", disconnect=Disconnect.BYE))
        with pytest.raises(NotOnThisRig, match="cpc"):
            sim.configure(LineConfig(country="us", disconnect=Disconnect.CPC))

        call = sim.ring(CallerId("+15550001111", "Lab Caller"))
        assert sim.wait_answered(15), list(sim.events())
        assert sim.off_hook and call.answered_at is not None
        with sim.record_far_end() as heard:
            sim.play(np.zeros(int(2.6 * SAMPLE_RATE), dtype=np.int16))  # the prompt plays meanwhile
            sim.play(speech)
            sim.send_dtmf("12", on_ms=100, off_ms=100, level_dbm0=-8.0)   # in-band, media's generator
            sim.send_dtmf("3", on_ms=120, inband=False)                    # RFC 4733
            sim.play(np.zeros(int(0.5 * SAMPLE_RATE), dtype=np.int16))
            sim.send_dtmf("#", on_ms=120, off_ms=60)                       # ends the DUT's recording
            assert sim.wait_on_hook(15), list(sim.events())             # the DUT hangs up
        assert not sim.off_hook
        kinds = [e.kind for e in sim.events()]
        assert kinds.index("off-hook") < kinds.index("on-hook")
        assert call.ended_at is not None and call.ended_at > call.answered_at

        # the simulator heard the DUT's prompt
        assert heard.samples is not None
        m = match(prompt, heard.samples, max_lag=SAMPLE_RATE)
        assert m.good(), m
        assert (results / "far-end-001.wav").exists()
        assert len(read_wav(results / "far-end-001.wav")) == len(heard.samples)

        # the DUT's transcript, read where the rig file says: the caller ID, each digit once, '#' ends the recording
        pi = sim.remote_dut()
        pi.wait_event("HANGUP", 10)
        first = pi.events()[0]["event"]
        assert first["InvocationEventType"] == "NEW_INBOUND_CALL"
        assert first["CallDetails"]["Participants"][0]["From"] == "+15550001111"
        got = [e["event"]["ActionData"]["ReceivedDigits"] for e in pi.events("DIGITS_RECEIVED")]
        assert got == ["1", "2", "3"], got  # one DIGITS_RECEIVED per key press, none doubled or lost
        rec_ok = [e["event"]["ActionData"] for e in pi.events("ACTION_SUCCESSFUL", "RecordAudio")]
        assert len(rec_ok) == 1 and rec_ok[0]["RecordingTerminatorUsed"] == "#"

        # the DUT's recording, read from the bucket the rig file names, holds the speech played
        stored = Path(rig.dut.bucket) / rec_ok[0]["RecordingDestination"]["Key"]
        assert pi.recordings() == [stored] == bucket_files(tmp_path, pattern="lab/*.wav")
        m = match(speech, pi.read_recording(stored), max_lag=4 * SAMPLE_RATE)
        assert m.good(), m

        # second call: the simulator hangs up (BYE) while the DUT records; the DUT view counts from mark()
        pi.mark()
        assert pi.recordings() == [] and pi.events() == [] and stored.name not in pi.log_text()
        sim.reset()
        assert list(sim.events()) == [] and sim.heard.clips == []
        sim.ring(CallerId("+15550002222"))
        assert sim.wait_answered(15)
        sim.play(np.zeros(int(2.6 * SAMPLE_RATE), dtype=np.int16))
        sim.play(speech)
        sim.hang_up()
        assert not sim.off_hook
        second = pi.wait_recordings(1, 15)
        assert [e["event"]["CallDetails"]["Participants"][0]["From"]
                for e in pi.events("NEW_INBOUND_CALL")] == ["+15550002222"]
        log_since_mark = pi.log_text()  # the daemon's log through dut.log_command: this call only
        assert second[0].name in log_since_mark and stored.name not in log_since_mark

    m = match(speech, pi.read_recording(second[0]), max_lag=4 * SAMPLE_RATE)
    assert m.good(), m
    # the DUT's own view, through the rig's status socket and metrics URL
    assert pi.wait_until(lambda: pi.status()["calls"] == [], 10) and pi.alive
    assert pi.metric("gatewayd_calls_total", line="trunk") == 2

    # the bench's smoke test, as the technician runs it: one ring, listen 3 s, hang up
    out = subprocess.run([sys.executable, "-m", "hil.labcheck", str(tmp_path / "rig.yaml"), "--ring", "--seconds",
                          "3", "--out", str(tmp_path / "smoke.wav")], env=child_env(), capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    smoke = json.loads(out.stdout)
    assert smoke["summary"]["calls"] == f"sip:lab@127.0.0.1:{rig.ata.sip_port}" and smoke["ring"]["answered"]
    assert match(prompt, read_wav(tmp_path / "smoke.wav"), max_lag=SAMPLE_RATE).good()
    assert pi.wait_until(lambda: pi.metric("gatewayd_calls_total", line="trunk") == 3, 10)
    d.stop()
    assert not pi.alive


def _busy_starts(x: np.ndarray) -> list[float]:
    det = ProgressDetector("us")
    found = []
    for i in range(0, len(x) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        for ev in det.process(AudioFrame(x[i:i + FRAME_SAMPLES], i)):
            if ev.kind is ToneKind.BUSY and ev.end_pts is None:
                found.append(ev.start_pts / SAMPLE_RATE)
    return found


def test_lab_simulator_abandon_and_far_end_disconnects(tmp_path: Path) -> None:
    """Abandon while ringing (CANCEL); busy tone only (sent over RTP, BYE after the budget); silence only
    (the DUT's silence timer ends the call before the budget)."""
    from hil.backends.lab import LabSimulator

    budget = 6.0
    speech = speechlike(1.5, seed=3)
    with _dut(tmp_path, budget, LAB_SLOW_CALLER="+15550003333", LAB_SLOW_SECONDS="4", LAB_SILENCE_SECONDS="2",
              LAB_DIGITS_CALLER="+15550006666") as (d, rig, _prompt, transcript), LabSimulator(rig) as sim:
        # 1. the caller gives up while the DUT's handler is still deciding (the line rings)
        call = sim.ring(CallerId("+15550003333"))
        _wait_for(lambda: any(e.kind == "ring" for e in sim.events()), 10, "no 180 Ringing")
        assert not sim.wait_answered(1.0)
        sim.abandon()
        assert sim.wait_on_hook(5) and not sim.off_hook
        assert call.answered_at is None and call.ended_at is not None and call.rings == 1
        kinds = [e.kind for e in sim.events()]
        assert kinds.index("ring") < kinds.index("abandoned") and "off-hook" not in kinds
        _wait_for(lambda: scrape_url(rig.dut.metrics_url).value("gatewayd_calls_total", line="trunk") == 1, 15,
                  "the DUT did not count the abandoned call")
        assert d.status()["calls"] == []
        assert bucket_files(tmp_path, pattern="lab/*.wav") == []  # never answered: nothing recorded

        # 2. busy tone only: the tone goes out over RTP, the call stays up, BYE after the budget
        sim.reset()
        sim.ring(CallerId("+15550004444"))
        assert sim.wait_answered(15)
        sim.play(np.zeros(int(2.6 * SAMPLE_RATE), dtype=np.int16))
        sim.play(speech)
        t0 = time.monotonic()
        sim.hang_up(how=Disconnect.BUSY)
        assert sim.off_hook  # still up: only the tone says the caller left
        assert sim.wait_on_hook(budget + 5)
        waited = time.monotonic() - t0
        assert budget - 0.5 < waited < budget + 3, waited  # nobody reacts to busy on a SIP leg: the budget ends it
        details = [e.detail for e in sim.events() if e.kind == "far-end-hangup"]
        assert details[0] == "busy" and "budget" in details[-1], details
        _wait_for(lambda: len(bucket_files(tmp_path, pattern="lab/*.wav")) == 1, 15, "no recording of the busy call")
        rec = read_wav(bucket_files(tmp_path, pattern="lab/*.wav")[0])
        assert match(speech, rec, max_lag=4 * SAMPLE_RATE).good()
        starts = _busy_starts(rec)  # the DUT recorded a busy cadence its own detector recognises
        assert len(starts) == 1, starts
        assert starts[0] > (match(speech, rec, max_lag=4 * SAMPLE_RATE).lag + len(speech)) / SAMPLE_RATE - 0.1

        # 3. silence only: the DUT's 2 s silence timeout ends the recording and the call, before the budget
        sim.reset()
        sim.ring(CallerId("+15550005555"))
        assert sim.wait_answered(15)
        sim.play(np.zeros(int(2.6 * SAMPLE_RATE), dtype=np.int16))
        sim.play(speech)
        sim.hang_up(how=Disconnect.SILENCE)
        assert sim.wait_on_hook(budget + 5)
        evs = list(sim.events())
        gone = next(e for e in evs if e.kind == "far-end-hangup")
        on_hook = next(e for e in evs if e.kind == "on-hook")  # the DUT hung up, not the budget
        assert not any("budget" in e.detail for e in evs)
        assert 2.0 - rig.tolerances.timing_s < on_hook.t - gone.t < budget, (gone, on_hook)

        # 4. the DUT sends digits: RFC 4733 events and in-band tones both reach the simulator, once each
        sim.remote_dut().put_prompt("lab/dtmf.wav", DtmfSender("159", tone_ms=100, gap_ms=100).read(6000))
        sim.reset()
        sim.ring(CallerId("+15550006666"))
        assert sim.wait_answered(15)
        assert sim.wait_on_hook(15)  # the DUT hangs up after its digits
        got = "".join(e.detail for e in sim.events() if e.kind == "dtmf-from-dut")
        assert got == "47159", list(sim.events())
    events = [e["event"] for e in _transcript(transcript)]
    stored = [e["ActionData"] for e in events
              if e["InvocationEventType"] == "ACTION_SUCCESSFUL" and e["ActionData"]["Type"] == "RecordAudio"]
    assert len(stored) == 2 and "RecordingTerminatorUsed" not in stored[1]
