"""``gatewayd levels --line TRUNK --on-call`` on a real SIP trunk (pjsua2), called by ``gatewayd call``
(pjsua2 in another process) that sends a known noise floor and nothing else."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gatewayd.cli import main
from media.frame import to_int16
from media.levels import NOISE_RMS_PER_MEAN_ABS, dbm0_to_rms
from media.wav import write_wav
from tests.integration.sip_peers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_on_call_measures_what_the_caller_sends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    cfg = tmp_path / "gatewayd.yaml"
    cfg.write_text(f"""
state_dir: {tmp_path}/state
lines:
  - type: sip
    name: trunk
    bind_address: 127.0.0.1
    port: {port}
applications:
  - name: voicemail
    handler: python:gatewayd.handlers.voicemail:handler
rules:
  - name: every-call
    trigger_type: Line
    trigger_value: "*"
    target_applications:
      - application: voicemail
""")
    floor = tmp_path / "floor.wav"
    write_wav(floor, to_int16(np.random.default_rng(3).standard_normal(8000 * 8) * dbm0_to_rms(-45.0)))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    caller = subprocess.Popen([sys.executable, "-m", "gatewayd", "call", f"sip:levels@127.0.0.1:{port}",
                               "--play", str(floor), "--hangup-after", "7", "--json"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        rc = main(["levels", "--line", "trunk", "--config", str(cfg), "--on-call", "--wait", "30",
                   "--seconds", "3", "--json"])
        out, err = capsys.readouterr()
    finally:
        c_out, c_err = caller.communicate(timeout=60)
    assert rc == 0, err
    r = json.loads(out)
    assert r["source"]["kind"] == "sip" and r["source"]["mode"] == "on-call"
    assert r["idle"]["floor_dbm0"] == pytest.approx(-45.0, abs=1.0)  # PCMU both ways
    s = r["suggestion"]
    assert s["threshold"] > r["idle"]["mean_abs"]["max"]
    assert s["threshold"] < 32768 * 10 ** (-26 / 20) / NOISE_RMS_PER_MEAN_ABS / 4
    assert 20 * math.log10(s["threshold"] / (dbm0_to_rms(-45.0) / NOISE_RMS_PER_MEAN_ABS)) == pytest.approx(
        7.0, abs=1.5)  # p90 ≈ 1 dB over the mean, then the 6 dB margin
    report = json.loads(c_out)
    assert report["answered"], c_err
