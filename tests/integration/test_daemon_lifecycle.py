"""The daemon's life cycle end to end: ``gatewayd run`` as a subprocess under a NOTIFY_SOCKET this test
owns (sd_notify READY/STATUS/WATCHDOG/STOPPING/RELOADING), signals (SIGTERM, SIGHUP, SIGKILL), a real SIP
line on loopback called by ``gatewayd call``, local-directory buckets and the bundled recorder handler.
"""

from __future__ import annotations

import errno
import json
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from gatewayd import daemon
from gatewayd.cli import main
from media import g711
from media.frame import SAMPLE_RATE
from media.wav import read_info, read_wav, write_wav
from tests.integration.daemon_proc import (
    DaemonProc,
    bucket_files,
    call_report,
    frozen_thread,
    gatewayd_cli,
    place_call,
    sip_config,
    thread_ids,
)
from tests.integration.sip_peers import free_port, match, noise

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            assert e.errno == errno.EADDRINUSE, e
            return True
    return False


def test_ready_only_once_the_line_is_up(tmp_path: Path) -> None:
    port = free_port()
    with DaemonProc(tmp_path, sip_config(tmp_path, port)) as d:
        d.start()
        ready = d.wait_ready()
        # the SIP line listens by the time READY=1 is sent (checked right away: it cannot close in between)
        assert udp_port_taken(port)
        first = d.notify.snapshot()[0]
        assert first.index == ready.index, f"sent before READY=1: {first.fields}"
        assert ready.pid == d.pid  # NotifyAccess=main: from the main process itself
        assert ready.get("STATUS") == "0 live calls; 1/1 lines up"
        d.wait_log("gatewayd ready")
        assert d.stop() == 0
        stopping = d.notify.wait(lambda m: "STOPPING=1" in m, after=ready, timeout=1.0)
        assert stopping.pid == d.pid
    assert not udp_port_taken(port)


def test_a_line_that_cannot_start_is_reported_down(tmp_path: Path) -> None:
    """A SIP port already taken: the daemon still comes up (the other lines work) and says the line is down."""
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    cfg = sip_config(tmp_path, free_port())
    cfg["lines"].append({**cfg["lines"][0], "name": "busy", "port": port})
    try:
        with DaemonProc(tmp_path, cfg) as d:
            d.start()
            ready = d.wait_ready()
            assert ready.get("STATUS") == "0 live calls; 1/2 lines up"
            assert {ln["name"]: ln["state"] for ln in d.status()["lines"]} == {"trunk": "up", "busy": "down"}
            assert "line busy did not start" in d.stderr()
            assert d.stop() == 0
    finally:
        taken.close()


def test_broken_config_exits_78_with_nothing_started(tmp_path: Path) -> None:
    port = free_port()
    cfg = sip_config(tmp_path, port)
    cfg["lines"][0]["prot"] = 5060  # unknown key
    with DaemonProc(tmp_path, cfg) as d:
        d.start()
        assert d.wait(15.0) == 78
        log = d.stderr()
        assert f"{d.config_path}:" in log and "prot" in log and "did you mean" in log, log
        line, col = log.split(f"{d.config_path}:", 1)[1].split(":")[:2]
        assert d.config_path.read_text().splitlines()[int(line) - 1][int(col) - 1:].startswith("prot"), log
        assert d.notify.snapshot() == []  # not even STATUS=
    assert not udp_port_taken(port)
    assert not (tmp_path / "state").exists()  # no spool, no status socket


def test_status_command_outside_the_daemon(tmp_path: Path) -> None:
    port = free_port()
    with DaemonProc(tmp_path, sip_config(tmp_path, port)) as d:
        d.start()
        d.wait_ready()
        out = gatewayd_cli("status", "--config", str(d.config_path))
        assert out.returncode == 0, out.stderr
        assert f"pid {d.pid}" in out.stdout
        assert "trunk" in out.stdout and "sip" in out.stdout and " up" in out.stdout
        assert "calls: 0" in out.stdout
        assert d.stop() == 0
    gone = gatewayd_cli("status", "--config", str(d.config_path))
    assert gone.returncode == 69 and "not running" in gone.stderr


def test_status_finds_the_service_socket_from_a_plain_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Under systemd the socket is in $RUNTIME_DIRECTORY (/run/gatewayd); an admin's shell has no such
    variable, and ``gatewayd status --config`` still finds it (the unit's directory, redirected here)."""
    run_dir = tmp_path / "run" / "gatewayd"
    run_dir.mkdir(parents=True)
    with DaemonProc(tmp_path, sip_config(tmp_path, free_port()), env={"RUNTIME_DIRECTORY": str(run_dir)}) as d:
        d.start()
        d.wait_ready()
        assert (run_dir / "gatewayd.sock").exists() and not (d.state_dir / "gatewayd.sock").exists()
        monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
        monkeypatch.setattr(daemon, "UNIT_RUNTIME_DIR", run_dir)
        assert main(["status", "--config", str(d.config_path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["pid"] == d.pid
        assert d.stop() == 0
    assert not (run_dir / "gatewayd.sock").exists()


# ------------------------------------------------------------------ calls
def caller_audio(tmp_path: Path, seconds: float, seed: int) -> tuple[Path, np.ndarray]:
    """A noise WAV for ``gatewayd call --play``, and what the daemon should hear (through PCMU)."""
    x = noise(seconds, seed)
    wav = tmp_path / f"caller-{seed}.wav"
    write_wav(wav, x)
    return wav, g711.ulaw_decode(g711.ulaw_encode(x))


def spooled_samples(state_dir: Path) -> int:
    """Samples written so far to the one recording in progress in the spool (0 when there is none)."""
    wavs = [p for p in (state_dir / "spool").glob("*.wav")]
    return max(0, (wavs[0].stat().st_size - 44) // 2) if len(wavs) == 1 else 0


def wait_spooled(state_dir: Path, samples: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while (n := spooled_samples(state_dir)) < samples:
        assert time.monotonic() < deadline, f"recording reached {n} samples, not {samples}"
        time.sleep(0.05)
    return n


def test_status_follows_a_live_call(tmp_path: Path) -> None:
    port = free_port()
    wav, _ = caller_audio(tmp_path, 4.0, seed=1)
    with DaemonProc(tmp_path, sip_config(tmp_path, port)) as d:
        d.start()
        ready = d.wait_ready()
        caller = place_call(f"sip:100@127.0.0.1:{port}", "--play", str(wav), "--hangup-after", "4")
        live = d.notify.wait(lambda m: m.get("STATUS") == "1 live call; 1/1 lines up", after=ready, timeout=15)
        st = d.status()
        assert [ln["name"] for ln in st["lines"]] == ["trunk"] and st["lines"][0]["state"] == "up"
        assert len(st["calls"]) == 1 and st["calls"][0]["application"] == "recorder"
        out = gatewayd_cli("status", "--config", str(d.config_path))
        assert out.returncode == 0, out.stderr
        assert "calls: 1" in out.stdout and f"{st['calls'][0]['transaction_id']} recorder" in out.stdout
        assert "Inbound trunk answered" in out.stdout, out.stdout
        report = call_report(caller)
        assert report["answered"], report["_stderr"]
        d.notify.wait(lambda m: m.get("STATUS") == "0 live calls; 1/1 lines up", after=live, timeout=10)
        assert d.status()["calls"] == []
        assert d.stop() == 0
    assert len(bucket_files(tmp_path)) == 1


def test_sigterm_finishes_and_uploads_the_recording_in_progress(tmp_path: Path) -> None:
    port = free_port()
    wav, heard = caller_audio(tmp_path, 12.0, seed=2)
    with DaemonProc(tmp_path, sip_config(tmp_path, port)) as d:
        d.start()
        ready = d.wait_ready()
        caller = place_call(f"sip:100@127.0.0.1:{port}", "--play", str(wav), "--hangup-after", "12")
        before = wait_spooled(d.state_dir, 2 * SAMPLE_RATE)
        d.signal(signal.SIGTERM)
        stopping = d.notify.wait(lambda m: "STOPPING=1" in m, after=ready, timeout=5)
        assert stopping.pid == d.pid
        assert d.wait(20) == 0
        log = d.stderr()
    report = call_report(caller)
    assert report["answered"] and report["hangup"] == "remote-bye", report
    assert report["call_s"] < 10.0  # cut short by the stop, not by the caller
    files = bucket_files(tmp_path)
    assert len(files) == 1 and files[0].parent.name == "calls", (files, log)
    assert files[0].stat().st_mtime >= stopping.wall - 0.5  # uploaded after STOPPING=1 (receipt time, slack)
    info = read_info(files[0])
    assert info.channels == 1 and info.sample_rate == SAMPLE_RATE and info.bits_per_sample == 16
    got = read_wav(files[0])
    assert before <= len(got) <= report["call_s"] * SAMPLE_RATE + 1600
    m = match(heard[:len(got)], got, max_lag=SAMPLE_RATE // 2)
    assert m.good(), m  # what the caller sent, in order
    assert list((tmp_path / "state" / "spool").glob("*.wav")) == []  # nothing left for the next start


# ------------------------------------------------------------------ watchdog
WATCHDOG_USEC = 2_000_000  # systemd's WatchdogSec=2s: pings due at least every 1 s
HEARTBEAT_STALE_S = 2.0  # gatewayd.daemon: the media worker beats every 0.25 s, stale after 2 s


def test_watchdog_fed_only_while_the_media_worker_runs(tmp_path: Path) -> None:
    half = WATCHDOG_USEC / 2e6
    with DaemonProc(tmp_path, sip_config(tmp_path, free_port()), watchdog_usec=WATCHDOG_USEC) as d:
        d.start()
        ready = d.wait_ready()
        pings = [ready]
        for _ in range(4):
            pings.append(d.notify.wait(lambda m: "WATCHDOG=1" in m, after=pings[-1], timeout=3 * half))
        gaps = np.diff([p.at for p in pings])
        assert gaps.max() <= half, f"WATCHDOG=1 gaps {gaps} (READY first) exceed half the timeout"
        assert all(p.pid == d.pid for p in pings)

        # the media worker (an OS-level thread name it gives itself) frozen alone: the control loop runs on
        [tid] = thread_ids(d.pid, "media-worker")
        with frozen_thread(d.pid, tid):
            frozen_at = time.monotonic()
            mark = d.notify.snapshot()[-1]
            d.wait_log("media worker heartbeat is stale", timeout=HEARTBEAT_STALE_S + 3 * half)
            age = d.status()["media_worker_heartbeat_age_s"]  # the status server (control loop) answers
            assert age >= HEARTBEAT_STALE_S
            d.wait_log("media worker heartbeat is stale", count=3, timeout=3 * half)  # 3 pings withheld
            thawed_at = time.monotonic()
        during = [m for m in d.notify.snapshot()[mark.index + 1:] if m.at < thawed_at]
        fed = [m.at - frozen_at for m in during if "WATCHDOG=1" in m]
        assert all(t < HEARTBEAT_STALE_S + 0.3 for t in fed), f"WATCHDOG=1 at {fed} s into the stall"
        back = d.notify.wait(lambda m: "WATCHDOG=1" in m and m.at > thawed_at, timeout=2 * half, after=mark)
        assert back.at - thawed_at <= 2 * half  # fed again at the next tick or the one after
        assert d.status()["media_worker_heartbeat_age_s"] < 1.0
        assert d.stop() == 0


def test_watchdog_pid_of_another_process_is_not_ours(tmp_path: Path) -> None:
    """WATCHDOG_PID names the main process; a daemon that inherited someone else's sends no WATCHDOG=1."""
    env = {"WATCHDOG_USEC": str(WATCHDOG_USEC // 4), "WATCHDOG_PID": "1"}
    with DaemonProc(tmp_path, sip_config(tmp_path, free_port()), env=env) as d:
        d.start()
        ready = d.wait_ready()
        d.wait_log("gatewayd ready")
        st = d.status()  # the control loop has run well past a 0.25 s ping period by the second query
        while st["uptime_s"] < 1.5:
            time.sleep(0.1)
            st = d.status()
        assert not [m for m in d.notify.snapshot() if "WATCHDOG=1" in m], ready
        assert d.stop() == 0


# ------------------------------------------------------------------ SIGHUP
def test_sighup_new_route_for_the_next_call_while_the_live_one_keeps_going(tmp_path: Path) -> None:
    port = free_port()
    first_wav, first_heard = caller_audio(tmp_path, 7.0, seed=3)
    second_wav, second_heard = caller_audio(tmp_path, 2.5, seed=4)
    cfg = sip_config(tmp_path, port)
    with DaemonProc(tmp_path, cfg) as d:
        d.start()
        ready = d.wait_ready()
        first = place_call(f"sip:100@127.0.0.1:{port}", "--play", str(first_wav), "--hangup-after", "7")
        wait_spooled(d.state_dir, SAMPLE_RATE)
        new = {**cfg, "applications": [*cfg["applications"],
                                       {"name": "voicemail", "handler": "python:gatewayd.handlers.voicemail:handler"}],
               "rules": [{"name": "to-200", "trigger_type": "ToPhoneNumber", "trigger_value": "200",
                          "target_applications": [{"application": "voicemail"}]}, *cfg["rules"]]}
        d.reload(new)
        reloading = d.notify.wait(lambda m: "RELOADING=1" in m, after=ready, timeout=5)
        d.notify.wait(lambda m: "READY=1" in m, after=reloading, timeout=5)
        d.wait_log("reloaded")
        assert d.status()["calls"][0]["application"] == "recorder"  # the live call keeps its application
        second = place_call(f"sip:200@127.0.0.1:{port}", "--play", str(second_wav), "--hangup-after", "2.5")
        r2, r1 = call_report(second), call_report(first)
        assert d.stop() == 0
    assert r1["answered"] and r1["hangup"] == "local" and r1["call_s"] >= 6.9, r1  # not dropped by the reload
    assert r2["answered"] and r2["hangup"] == "local", r2
    [old] = bucket_files(tmp_path, pattern="calls/*.wav")
    [routed] = bucket_files(tmp_path, pattern="voicemail/*.wav")  # the new rule's application
    assert len(read_wav(old)) >= 6.5 * SAMPLE_RATE
    assert match(first_heard, read_wav(old), max_lag=SAMPLE_RATE // 2).good()
    got = read_wav(routed)
    assert match(second_heard[-len(got):], got, max_lag=SAMPLE_RATE).median > 0.9  # after the (failed) prompts


def test_sighup_moves_a_bucket_for_the_next_recording(tmp_path: Path) -> None:
    port = free_port()
    wav, heard = caller_audio(tmp_path, 2.0, seed=7)
    cfg = sip_config(tmp_path, port)
    moved = tmp_path / "elsewhere"
    with DaemonProc(tmp_path, cfg) as d:
        d.start()
        ready = d.wait_ready()
        d.reload({**cfg, "buckets": [{**cfg["buckets"][0], "root": str(moved)}]})
        d.notify.wait(lambda m: "READY=1" in m, after=ready, timeout=5)
        d.wait_log("reloaded")
        report = call_report(place_call(f"sip:100@127.0.0.1:{port}", "--play", str(wav), "--hangup-after", "2"))
        assert d.stop() == 0
    assert report["answered"], report
    assert bucket_files(tmp_path) == []
    [rec] = sorted((moved / "gatewayd-recordings" / "calls").glob("*.wav"))
    assert match(heard, read_wav(rec), max_lag=SAMPLE_RATE // 2).good()


def test_sighup_changed_application_environment_retires_the_old_handler(tmp_path: Path) -> None:
    """The live call keeps its handler (and the prefix it chose); the next calls get the new environment;
    the replaced in-process handler is closed once its call ends, so reloads leak no threads."""
    port = free_port()
    long_wav, _ = caller_audio(tmp_path, 4.0, seed=8)
    short_wav, _ = caller_audio(tmp_path, 1.0, seed=9)
    cfg = sip_config(tmp_path, port, environment={"RECORDER_PREFIX": "p0"})

    def reload_to(d: DaemonProc, prefix: str, n: int) -> None:
        cfg["applications"][0]["environment"] = {"RECORDER_PREFIX": prefix}
        d.reload(cfg)
        d.wait_log("reloaded", count=n)

    def short_call() -> None:
        r = call_report(place_call(f"sip:1@127.0.0.1:{port}", "--play", str(short_wav), "--hangup-after", "1"))
        assert r["answered"], r

    with DaemonProc(tmp_path, cfg) as d:
        d.start()
        d.wait_ready()
        live = place_call(f"sip:1@127.0.0.1:{port}", "--play", str(long_wav), "--hangup-after", "4")
        wait_spooled(d.state_dir, SAMPLE_RATE // 2)
        reload_to(d, "p1", 1)
        short_call()
        assert call_report(live)["answered"]
        d.wait_log("retired (no call in progress uses it)")  # once the live call ended
        threads = len(list(Path(f"/proc/{d.pid}/task").iterdir()))
        for n, prefix in ((2, "p2"), (3, "p3")):
            reload_to(d, prefix, n)
            short_call()
            d.wait_log("retired (no call in progress uses it)", count=n)
        assert len(list(Path(f"/proc/{d.pid}/task").iterdir())) <= threads
        assert d.stop() == 0
    assert sorted(p.parent.name for p in bucket_files(tmp_path)) == ["p0", "p1", "p2", "p3"]
    [p0] = bucket_files(tmp_path, pattern="p0/*.wav")
    assert len(read_wav(p0)) >= 3.5 * SAMPLE_RATE  # the live call, recorded to its end under the old handler


def test_sighup_broken_config_is_refused_and_the_old_one_serves(tmp_path: Path) -> None:
    port = free_port()
    wav, heard = caller_audio(tmp_path, 2.0, seed=5)
    cfg = sip_config(tmp_path, port)
    with DaemonProc(tmp_path, cfg) as d:
        d.start()
        ready = d.wait_ready()
        broken = {**cfg, "rules": [{**cfg["rules"][0], "target_applications": [{"aplication": "recorder"}]}]}
        d.reload(broken)
        reloading = d.notify.wait(lambda m: "RELOADING=1" in m, after=ready, timeout=5)
        d.notify.wait(lambda m: "READY=1" in m, after=reloading, timeout=5)  # back to ready: the old config
        log = d.wait_log("reload refused")
        refused = [ln for ln in log.splitlines() if "reload refused" in ln]
        assert any(f"{d.config_path}:" in ln and "'aplication'" in ln for ln in refused), refused
        where = next(ln for ln in refused if "'aplication'" in ln).split(f"{d.config_path}:", 1)[1]
        line, col = (int(x) for x in where.split(":")[:2])
        assert d.config_path.read_text().splitlines()[line - 1][col - 1:].startswith("aplication")
        assert "reloaded" not in log
        caller = place_call(f"sip:100@127.0.0.1:{port}", "--play", str(wav), "--hangup-after", "2")
        report = call_report(caller)
        assert d.stop() == 0
    assert report["answered"], report
    [rec] = bucket_files(tmp_path, pattern="calls/*.wav")  # the old rule and application took it
    assert match(heard, read_wav(rec), max_lag=SAMPLE_RATE // 2).good()


# ------------------------------------------------------------------ crash and recovery
def test_kill_9_mid_recording_then_restart_uploads_the_spooled_recording(tmp_path: Path) -> None:
    port = free_port()
    wav, heard = caller_audio(tmp_path, 10.0, seed=6)
    cfg = sip_config(tmp_path, port)
    spool = tmp_path / "state" / "spool"
    with DaemonProc(tmp_path, cfg) as d:
        d.start()
        d.wait_ready()
        caller = place_call(f"sip:100@127.0.0.1:{port}", "--play", str(wav), "--hangup-after", "10")
        try:
            wait_spooled(d.state_dir, int(2.5 * SAMPLE_RATE))
            assert d.kill() == -signal.SIGKILL
        finally:
            caller.kill()
            caller.communicate()
    [spooled] = list(spool.glob("*.wav"))
    [sidecar] = list(spool.glob("*.json"))
    key = json.loads(sidecar.read_text())["key"]
    flushed = spooled.read_bytes()[44:]  # every write the daemon made before it died (the page cache keeps it)
    flushed = flushed[:len(flushed) // 2 * 2]
    assert len(flushed) >= 2.5 * SAMPLE_RATE * 2
    assert bucket_files(tmp_path) == []

    with DaemonProc(tmp_path, cfg, name="restarted") as d:
        d.start()
        d.wait_ready()
        d.wait_log("start-up recovery: 1 spooled recording(s)")
        deadline = time.monotonic() + 10
        while not bucket_files(tmp_path) or list(spool.glob("*.json")):
            assert time.monotonic() < deadline, (bucket_files(tmp_path), list(spool.iterdir()), d.stderr())
            time.sleep(0.05)
        assert d.stop() == 0
    [uploaded] = bucket_files(tmp_path)
    assert uploaded == tmp_path / "buckets" / "gatewayd-recordings" / key  # where RecordAudio meant it to go
    info = read_info(uploaded)
    assert info.frames * 2 == len(flushed)  # header repaired to what was on disk
    data = uploaded.read_bytes()
    assert data[-len(flushed):] == flushed  # byte for byte, up to the last frame written
    got = read_wav(uploaded)
    assert match(heard[:len(got)], got, max_lag=SAMPLE_RATE // 2).good()
    assert list(spool.iterdir()) == []


# ------------------------------------------------------------------ gatewayd bench startup
def test_bench_startup_measures_cold_starts_and_fails_a_missed_bound() -> None:
    r = gatewayd_cli("bench", "startup", "-n", "2", "--bound-p95", "0.001", "--json", timeout=60)
    assert r.returncode == 1, r.stderr  # no daemon reaches READY=1 in a millisecond
    figures = json.loads(r.stdout)
    assert figures["n"] == 2 and 0.001 < figures["min_s"] <= figures["p50_s"] <= figures["p95_s"]
    assert figures["p95_s"] < 30  # each run did reach READY=1 (else: no figures, an error)
