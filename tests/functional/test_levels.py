"""``gatewayd levels --line NAME``: the real command against emulated lines, in real time.

The modem emulator runs behind a real pty and the FXO emulator behind a real pty plus its FIFO-backed
ALSA card; both put a known synthesised noise floor (white noise at a set dBm0, optionally mains hum
and the dial tone of a seized line) on the line. The command opens the line from a config file as the
daemon would, seizes it, records, and suggests a SilenceThreshold.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.emulators.fxo import FxoEmulator
from drivers.emulators.line_audio import Hum
from drivers.emulators.modem import CallerId, FakeV253Modem
from drivers.line import LineEvent
from drivers.modem.config import ModemConfig
from drivers.modem.driver import ModemLine
from gatewayd.cli import main
from media.levels import NOISE_RMS_PER_MEAN_ABS, dbm0_to_rms

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

DBOV_PER_DBM0 = -20 * math.log10(32768 / dbm0_to_rms(0.0))  # noise at x dBm0 is x + this dBov (-6.15)
SPEECH_MEAN_ABS = 32768 * 10 ** (-26 / 20) / NOISE_RMS_PER_MEAN_ABS  # nominal speech, -26 dBov


def config(path: Path, line: str) -> Path:
    path.write_text(f"""
state_dir: {path.parent}/state
lines:
{line}
  - type: sip
    name: trunk
    bind_address: 127.0.0.1
    port: 0
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
    return path


def modem_config(tmp: Path, device: Path) -> Path:
    return config(tmp / "gatewayd.yaml", f"""  - type: modem
    name: modem0
    device: {device}
    rtscts: false""")


def levels(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any] | None, str]:
    rc = main(["levels", *argv])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if out.startswith("{") else None), err


@pytest.fixture
def modem_factory(tmp_path: Path) -> Iterator[Any]:
    emus: list[FakeV253Modem] = []

    def make(**kw: Any) -> FakeV253Modem:
        emu = FakeV253Modem("usr5637", link=tmp_path / f"ttyMODEM{len(emus)}", **kw)
        emu.start()
        emus.append(emu)
        return emu
    yield make
    for e in emus:
        e.stop()


def check_suggestion(r: dict[str, Any], noise_dbm0: float) -> int:
    """The measured floor is the emulated one; the suggestion sits above every idle frame and well under speech."""
    idle = r["idle"]
    assert idle["floor_dbov"] == pytest.approx(noise_dbm0 + DBOV_PER_DBM0, abs=1.5)
    assert idle["floor_dbm0"] == pytest.approx(noise_dbm0, abs=1.5)
    s = r["suggestion"]
    assert s["basis"] == "idle"
    t: int = s["threshold"]
    assert t > idle["mean_abs"]["max"] and s["idle_silent_fraction"] == 1.0
    assert t < SPEECH_MEAN_ABS / 4 and s["speech_headroom_db"] >= 12  # speech stays > 12 dB above it
    assert "p90" in s["reasoning"] and "margin" in s["reasoning"]
    return t


def test_modem_floor_and_suggestion_follow_the_emulated_noise(tmp_path: Path, modem_factory: Any,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    quiet = modem_factory(line_noise_dbm0=-55.0)
    rc, r, err = levels(capsys, "--line", "modem0", "--config", str(modem_config(tmp_path, quiet.path)),
                        "--seconds", "2", "--json")
    assert rc == 0 and r is not None, err
    assert r["source"] == {"line": "modem0", "kind": "modem", "mode": "off-hook", "settle": 0.5, "country": "us",
                           "codec": "ULAW", "duration": 2.0}
    assert r["tones"] == [] and r["hum"] is None
    t_quiet = check_suggestion(r, -55.0)
    dev = quiet.device
    assert dev.rings_sent == 0 and dev.ata_count == 0  # seized: no call was answered
    assert quiet.wait_until(lambda d: not d.off_hook and "ATH" in d.commands, 10.0)  # and put back on-hook

    # 15 dB more noise, and the exchange's dial tone for the first 2 s after seizing
    loud = modem_factory(line_noise_dbm0=-40.0, dial_tone_s=2.0)
    rc, r, err = levels(capsys, "--line", "modem0", "--config", str(modem_config(tmp_path, loud.path)),
                        "--seconds", "3", "--json")
    assert rc == 0 and r is not None, err
    assert [t["kind"] for t in r["tones"]] == ["dial"] and r["tones"][0]["end"] == pytest.approx(1.5, abs=0.1)
    assert r["frames_excluded"]["tone_or_digit"] >= 75  # 1.5 s of the 3 s measured (after 0.5 s settling)
    assert not any("ended the leg" in n for n in r["notes"])  # the dial tone did not end the measurement
    t_loud = check_suggestion(r, -40.0)
    assert 20 * math.log10(t_loud / t_quiet) == pytest.approx(15.0, abs=2.0)
    assert loud.wait_until(lambda d: not d.off_hook, 10.0)


def test_saved_recording_measures_the_same(tmp_path: Path, modem_factory: Any,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    emu = modem_factory(line_noise_dbm0=-50.0)
    wav = tmp_path / "line.wav"
    rc, _, err = levels(capsys, "--line", "modem0", "--config", str(modem_config(tmp_path, emu.path)),
                        "--seconds", "1.5", "--save", str(wav))
    assert rc == 0 and wav.exists(), err
    # the saved recording measures the same from the file
    rc2, r, err2 = levels(capsys, str(wav), "--json")
    assert rc2 == 0 and r is not None, err2
    assert r["source"]["file"] == str(wav) and r["duration"] == 1.5
    check_suggestion(r, -50.0)


def test_text_output_explains_the_suggestion(tmp_path: Path, modem_factory: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    emu = modem_factory(line_noise_dbm0=-45.0)
    rc = main(["levels", "--line", "modem0", "--config", str(modem_config(tmp_path, emu.path)), "--seconds", "1.5"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("line modem0 (modem, codec ULAW): off-hook; 1.50 s measured after 0.5 s settling\n")
    assert "suggested SilenceThreshold: " in out and "because: p90 of the idle frames' mean |x|" in out
    assert "noise floor: " in out and "hum: none found" in out


def test_on_call_answers_the_next_call_and_measures_it(tmp_path: Path, modem_factory: Any,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    emu = modem_factory(line_noise_dbm0=-50.0, ring_on_s=0.3, ring_off_s=0.5)

    def call_in() -> None:  # once the line has initialised the modem, a caller rings and says nothing
        if emu.wait_until(lambda d: d.vcid == 1, 20.0):
            emu.ring(CallerId(number="5551234"), rings=8)
    caller = threading.Thread(target=call_in)
    caller.start()
    try:
        rc, r, err = levels(capsys, "--line", "modem0", "--config", str(modem_config(tmp_path, emu.path)),
                            "--on-call", "--wait", "30", "--seconds", "1.5", "--json")
    finally:
        caller.join()
    assert rc == 0 and r is not None, err
    assert "waiting up to 30 s for a call on line modem0" in err
    assert r["source"]["mode"] == "on-call" and r["source"]["caller"] == "5551234"
    assert emu.device.rings_at_off_hook == 2  # answered like the daemon would, at the configured ring
    check_suggestion(r, -50.0)
    assert emu.wait_until(lambda d: not d.off_hook, 10.0)


def test_on_call_gives_up_when_no_call_comes(tmp_path: Path, modem_factory: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    emu = modem_factory()
    rc, r, err = levels(capsys, "--line", "modem0", "--config", str(modem_config(tmp_path, emu.path)),
                        "--on-call", "--wait", "1")
    assert rc == 69 and r is None and "no call on line modem0 within 1 s" in err
    assert not emu.device.off_hook


def test_unwritable_save_still_reports(tmp_path: Path, modem_factory: Any, capsys: pytest.CaptureFixture[str]) -> None:
    emu = modem_factory(line_noise_dbm0=-50.0)
    rc, r, err = levels(capsys, "--line", "modem0", "--config", str(modem_config(tmp_path, emu.path)),
                        "--seconds", "1.5", "--save", str(tmp_path / "missing" / "x.wav"), "--json")
    assert rc == 73 and "cannot write" in err
    assert r is not None and r["suggestion"]["threshold"] > 0 and "saved" not in r["source"]


def test_refused_while_another_process_holds_the_modem(tmp_path: Path, modem_factory: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    emu = modem_factory(line_noise_dbm0=-50.0)
    events: list[LineEvent] = []
    holder = ModemLine(ModemConfig(device=emu.path, name="modem0", rtscts=False))
    holder.start(events.append)
    try:
        cfg = modem_config(tmp_path, emu.path)
        rc, r, err = levels(capsys, "--line", "modem0", "--config", str(cfg), "--seconds", "1")
        assert rc == 75 and r is None
        assert "line 'modem0' is busy: another process has" in err and "stop it first" in err
        assert not emu.device.off_hook
    finally:
        holder.stop()


def test_refused_while_the_daemon_runs_the_line(tmp_path: Path, modem_factory: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    emu = modem_factory(line_noise_dbm0=-50.0)
    cfg = modem_config(tmp_path, emu.path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("RUNTIME_DIRECTORY", None)
    daemon = subprocess.Popen([sys.executable, "-m", "gatewayd", "run", "--config", str(cfg)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        sock = tmp_path / "state" / "gatewayd.sock"
        end = time.monotonic() + 30
        while not sock.exists():
            assert daemon.poll() is None, daemon.stderr.read().decode() if daemon.stderr else ""
            assert time.monotonic() < end, "the daemon did not come up"
            time.sleep(0.1)
        rc, r, err = levels(capsys, "--line", "modem0", "--config", str(cfg), "--seconds", "1")
        assert rc == 75 and r is None
        assert f"line 'modem0' is busy: gatewayd (pid {daemon.pid}) is running with it" in err
        assert not emu.device.off_hook
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)


def test_usage_errors_name_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = modem_config(tmp_path, tmp_path / "no-such-tty")
    rc, _, err = levels(capsys, "--line", "nope", "--config", str(cfg))
    assert rc == 64 and "no line 'nope'" in err and "lines: modem0, trunk" in err
    rc, _, err = levels(capsys, "--line", "trunk", "--config", str(cfg))
    assert rc == 64 and "SIP trunk" in err and "--on-call" in err
    rc, _, err = levels(capsys, "--line", "modem0", "--config", str(cfg), "--seconds", "1")
    assert rc == 69 and "did not start" in err and "no-such-tty" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("lines:\n  - type: modem\n    nmae: x\n")
    rc, _, err = levels(capsys, "--line", "x", "--config", str(bad))
    assert rc == 78 and "bad.yaml:3" in err
    rc, _, err = levels(capsys)
    assert rc == 64 and "either a WAV file or --line NAME" in err
    rc, _, err = levels(capsys, str(tmp_path / "none.wav"))
    assert rc == 66 and "none.wav" in err


# ------------------------------------------------------------------------------------------ FXO
@pytest.fixture
def fxo_factory(tmp_path: Path) -> Iterator[Any]:
    emus: list[FxoEmulator] = []

    def make(**kw: Any) -> tuple[FxoEmulator, Path]:
        d = tmp_path / f"fxo{len(emus)}"
        emu = FxoEmulator(d / "emu", **kw).start()
        emus.append(emu)
        cfg = config(d / "gatewayd.yaml", f"""  - type: fxo
    name: fxo0
    control_device: {emu.serial_path}
    audio_device: fxo
    caller_id: none""")
        return emu, cfg
    yield make
    for e in emus:
        e.stop()


def test_fxo_floor_hum_and_suggestion_follow_the_emulated_line(fxo_factory: Any,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    quiet, cfg = fxo_factory(noise_dbm0=-60.0)
    with quiet.alsa.activated():
        rc, r, err = levels(capsys, "--line", "fxo0", "--config", str(cfg), "--seconds", "2", "--json")
    assert rc == 0 and r is not None, err
    assert r["source"]["kind"] == "fxo" and r["source"]["mode"] == "off-hook"
    assert r["hum"] is None
    t_quiet = check_suggestion(r, -60.0)
    assert len(quiet.calls) == 1 and quiet.calls[0].on_hook_at is not None  # seized once, then hung up

    # 10 dB more noise plus a ground loop's 150 Hz (3rd harmonic of 50 Hz) at -50 dBm0
    noisy, cfg = fxo_factory(noise_dbm0=-50.0, hum=Hum(50.0, (None, None, -50.0)), dial_tone_s=2.0)
    with noisy.alsa.activated():
        rc, r, err = levels(capsys, "--line", "fxo0", "--config", str(cfg), "--seconds", "3", "--json")
    assert rc == 0 and r is not None, err
    assert [t["kind"] for t in r["tones"]] == ["dial"]
    h = r["hum"]
    assert h is not None and h["mains_hz"] == 50 and [c["hz"] for c in h["harmonics"]] == [150.0]
    assert h["harmonics"][0]["dbov"] == pytest.approx(-50.0 + DBOV_PER_DBM0, abs=1.0)
    # the floor is noise + hum: -50 dBm0 each, so 3 dB above either
    assert r["idle"]["floor_dbov"] == pytest.approx(-50.0 + DBOV_PER_DBM0 + 3.0, abs=1.5)
    s = r["suggestion"]
    assert s["threshold"] > r["idle"]["mean_abs"]["max"] and s["threshold"] < SPEECH_MEAN_ABS / 4
    assert 20 * math.log10(s["threshold"] / t_quiet) == pytest.approx(13.0, abs=2.0)
    assert len(noisy.calls) == 1 and noisy.calls[0].on_hook_at is not None
