"""drivers/sip against SIPp on loopback: audio, RFC 4733 and SIP INFO digits, ACL, CANCEL, RTP timeout,
rejections, malformed SIP and garbage datagrams, TCP, two trunks on one endpoint."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from drivers.line import DigitReceived, DigitSource, IncomingCall, LineEvent, RemoteHangup
from gatewayd.testing.sipp import sipp_reply
from media.frame import SAMPLE_RATE
from tests.integration.sip_peers import (
    SIPP_PCAP_DIR,
    Answerer,
    Events,
    RecPort,
    SippResult,
    finish_sipp,
    match,
    pcap_rtp_audio,
    run_sipp,
    sipp_dir,
    start_sipp,
    started_line,
    write_scenario,
)

if TYPE_CHECKING:
    from drivers.sip.line import SipLine

pj = pytest.importorskip("pjsua2", reason="pjsua2 is the SIP stack under test (pip install gatewayd[sip])")
pytestmark = [pytest.mark.integration]

INVITE_SDP = """
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test Caller" <sip:+15550001111@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      X-Customer-Id: abc-123
      X-Trace: t1
      Subject: not passed on
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]>
  </send>
"""

BYE_OK = sipp_reply("200 OK", to_tag=False)  # the answer to the far end's BYE

ACK = """
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test Caller" <sip:+15550001111@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""

BYE = """
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test Caller" <sip:+15550001111@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: [cseq] BYE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""


def info(cseq: int, ctype: str, body: str) -> str:
    return f"""
  <send retrans="500">
    <![CDATA[
      INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Test Caller" <sip:+15550001111@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: {ctype}
      Content-Length: [len]

      {body}
    ]]>
  </send>
  <recv response="200"/>
"""


def ok(r: SippResult) -> None:
    assert r.returncode == 0, \
        f"SIPp failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}\n{r.errors[-3000:]}"


def digits(events: Events) -> list[tuple[str, DigitSource]]:
    return [(d.digit, d.source) for d in events.of(DigitReceived)]


def settle(events: Events, seconds: float = 0.5) -> list[LineEvent]:
    """Let late events (there should be none) arrive, then return them all."""
    time.sleep(seconds)
    return list(events.items)


# ------------------------------------------------------------------ audio + RFC 4733
@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_uac_pcap_audio_arrives_and_rfc2833_digit_once(tmp_path: Path, transport: str) -> None:
    ref = pcap_rtp_audio(SIPP_PCAP_DIR / "g711a.pcap")
    cwd = sipp_dir(tmp_path)
    with started_line(transports=("udp", "tcp")) as (line, events):
        answerer = Answerer(line, events)
        port = line.local_port("tcp" if transport == "t1" else "udp")
        r = run_sipp(cwd, f"127.0.0.1:{port}", "-sn", "uac_pcap", transport=transport)
        ok(r)
        inc = events.wait(IncomingCall)
        hang = events.wait(RemoteHangup, inc.leg_id)
        stats = line.leg_stats(inc.leg_id)
    assert (inc.caller, inc.called, inc.caller_name) == ("sipp", "service", "sipp")
    assert inc.remote.startswith("127.0.0.1:")
    assert (hang.reason, hang.sip_code) == ("bye", 0)
    # the built-in scenario plays '1' once, 8 s after the audio started
    got = events.of(DigitReceived, inc.leg_id)
    assert [(d.digit, d.source) for d in got] == [("1", DigitSource.RFC4733)]
    assert got[0].start_pts is not None and 7.5 * SAMPLE_RATE <= got[0].start_pts <= 9.5 * SAMPLE_RATE
    rec = answerer.ports[inc.leg_id].audio()
    m = match(ref, rec, max_lag=SAMPLE_RATE)
    assert m.good(), m
    assert len(rec) >= m.lag + len(ref)
    pts = [f.pts for f in answerer.ports[inc.leg_id].frames]
    assert pts == list(range(0, 160 * len(pts), 160))  # every 20 ms, no gap
    assert stats is not None and stats.port_errors == 0 and stats.bad_frames == 0
    assert len(events.of(IncomingCall)) == 1


# ------------------------------------------------------------------ ACL
def test_source_outside_acl_gets_403_and_no_event(tmp_path: Path) -> None:
    cwd = sipp_dir(tmp_path)
    scen = write_scenario(cwd, "acl", INVITE_SDP + """
  <recv response="100" optional="true"/>
  <recv response="403"/>
""" + ACK.replace("CSeq: 1 ACK", "CSeq: 1 ACK"))
    with started_line(allowed_peers=("127.0.0.2/32", "10.0.0.0/8")) as (line, events):
        Answerer(line, events)
        ok(run_sipp(cwd, f"127.0.0.1:{line.local_port()}", "-sf", str(scen)))
        seen = settle(events)
        assert line.rejected_acl == 1
    assert not [e for e in seen if e.leg_id]  # no IncomingCall, no hang-up: nothing reached the engine


# ------------------------------------------------------------------ CANCEL, reject, RTP timeout, SIP INFO
def test_cancel_while_ringing_and_x_headers(tmp_path: Path) -> None:
    cwd = sipp_dir(tmp_path)
    scen = write_scenario(cwd, "cancel", INVITE_SDP + """
  <recv response="100" optional="true"/>
  <recv response="180"/>
  <pause milliseconds="300"/>
  <send>
    <![CDATA[
      CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
  <recv response="487"/>
""" + ACK)
    with started_line() as (line, events):
        Answerer(line, events, answer=False)
        ok(run_sipp(cwd, f"127.0.0.1:{line.local_port()}", "-sf", str(scen), "-s", "+15551230000"))
        inc = events.wait(IncomingCall)
        hang = events.wait(RemoteHangup, inc.leg_id)
        seen = settle(events)
    assert (inc.caller, inc.caller_name, inc.called) == ("+15550001111", "Test Caller", "+15551230000")
    assert dict(inc.headers) == {"X-Customer-Id": "abc-123", "X-Trace": "t1"}
    assert (hang.reason, hang.sip_code) == ("cancel", 487)
    assert [type(e).__name__ for e in seen if e.leg_id] == ["IncomingCall", "RemoteHangup"]


@pytest.mark.parametrize(("code", "expect"), [(486, "486"), (0, "480"), (603, "603")])
def test_hangup_before_answer_rejects_with_code(tmp_path: Path, code: int, expect: str) -> None:
    cwd = sipp_dir(tmp_path)
    scen = write_scenario(cwd, "reject", INVITE_SDP + f"""
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="{expect}"/>
""" + ACK)
    with started_line() as (line, events):
        events.on_event = lambda e: line.hangup(e.leg_id, code) if isinstance(e, IncomingCall) else None
        ok(run_sipp(cwd, f"127.0.0.1:{line.local_port()}", "-sf", str(scen)))
        seen = settle(events)
    assert [type(e).__name__ for e in seen if e.leg_id] == ["IncomingCall"]  # our own reject: no event


def test_rtp_timeout_hangs_up(tmp_path: Path) -> None:
    cwd = sipp_dir(tmp_path)
    scen = write_scenario(cwd, "silent", INVITE_SDP + """
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
""" + ACK + """
  <recv request="BYE" timeout="30000"/>
""" + BYE_OK)
    with started_line(rtp_timeout_s=1.5) as (line, events):
        answerer = Answerer(line, events)
        ok(run_sipp(cwd, f"127.0.0.1:{line.local_port()}", "-sf", str(scen)))
        inc = events.wait(IncomingCall)
        hang = events.wait(RemoteHangup, inc.leg_id)
        seen = settle(events)
    assert (hang.reason, hang.sip_code) == ("rtp-timeout", 0)
    assert len([e for e in seen if isinstance(e, RemoteHangup)]) == 1
    # the port was clocked all along (silence) until the timeout
    assert len(answerer.ports[inc.leg_id].frames) >= int(1.5 * 50)


def test_sip_info_digits(tmp_path: Path) -> None:
    cwd = sipp_dir(tmp_path)
    scen = write_scenario(cwd, "info", INVITE_SDP + """
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"/>
""" + ACK + """<pause milliseconds="500"/>"""
        + info(2, "application/dtmf-relay", "Signal=5\r\nDuration=160")
        + info(3, "application/dtmf", "7")
        + info(4, "application/dtmf-relay", "Signal=#\r\nDuration=100")
        + """<pause milliseconds="300"/>""" + BYE.replace("[cseq]", "5"))
    with started_line() as (line, events):
        Answerer(line, events)
        ok(run_sipp(cwd, f"127.0.0.1:{line.local_port()}", "-sf", str(scen)))
        inc = events.wait(IncomingCall)
        events.wait(RemoteHangup, inc.leg_id)
    assert digits(events) == [("5", DigitSource.SIP_INFO), ("7", DigitSource.SIP_INFO), ("#", DigitSource.SIP_INFO)]
    starts = [d.start_pts for d in events.of(DigitReceived)]
    assert all(s is not None for s in starts) and starts == sorted(starts)


# ------------------------------------------------------------------ robustness
# (text replaced, replacement, what pjsip answers: None = the message is dropped without an answer)
BROKEN: dict[str, tuple[str, str, str | None]] = {
    "no-call-id": ("Call-ID: [call_id]\n", "", None),
    "no-via": ("Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n", "", None),
    "bad-cseq": ("CSeq: 1 INVITE", "CSeq: one INVITE", None),
    "bad-from": ('From: "Test Caller" <sip:+15550001111@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]',
                 "From: <<garbage>>;tag=1", None),
    "bad-content-length": ("Content-Length: [len]", "Content-Length: many", None),
    "bad-sdp": ("m=audio [media_port] RTP/AVP 0 101", "m=audio notaport RTP/AVP zero", "400"),
}


def test_malformed_sip_and_garbage_do_not_break_the_next_call(tmp_path: Path) -> None:
    cwd = sipp_dir(tmp_path)
    with started_line(transports=("udp", "tcp")) as (line, events):
        answerer = Answerer(line, events)
        udp, tcp = line.local_port("udp"), line.local_port("tcp")
        # garbage datagrams and a garbage TCP stream
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for junk in (b"", b"\x00" * 1500, b"INVITE\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n", bytes(range(256)) * 5,
                         b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n" + b"A" * 60000):
                s.sendto(junk, ("127.0.0.1", udp))
        with socket.create_connection(("127.0.0.1", tcp), timeout=5) as c:
            c.sendall(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: -5\r\n\r\n" + b"\xff" * 4000)
        # broken INVITEs from SIPp: each is dropped or refused exactly as listed, none reaches the engine
        for name, (old, new, answer) in BROKEN.items():
            assert old in INVITE_SDP, name
            body = INVITE_SDP.replace(old, new)
            if answer is None:  # SIPp fails on any unexpected answer
                body += '\n  <pause milliseconds="1500"/>\n'
            else:
                body += f'\n  <recv response="100" optional="true"/>\n  <recv response="{answer}"/>\n' + ACK
            scen = write_scenario(cwd, name, body)
            r = run_sipp(cwd, f"127.0.0.1:{udp}", "-sf", str(scen), timeout=20)
            assert r.returncode == 0, (name, r.errors[-2000:])
        seen = settle(events, 1.0)
        assert not [e for e in seen if e.leg_id]
        # the next good call works
        r = run_sipp(cwd, f"127.0.0.1:{udp}", "-sn", "uac_pcap")
        ok(r)
        inc = events.wait(IncomingCall)
        events.wait(RemoteHangup, inc.leg_id)
    assert digits(events) == [("1", DigitSource.RFC4733)]
    m = match(pcap_rtp_audio(SIPP_PCAP_DIR / "g711a.pcap"), answerer.ports[inc.leg_id].audio(), SAMPLE_RATE)
    assert m.good(), m


def test_two_trunks_share_the_endpoint_and_route_by_port(tmp_path: Path) -> None:
    cwd = sipp_dir(tmp_path)
    with started_line(name="a") as (line_a, ev_a), started_line(name="b") as (line_b, ev_b):
        Answerer(line_a, ev_a)
        Answerer(line_b, ev_b)
        ok(run_sipp(cwd, f"127.0.0.1:{line_b.local_port()}", "-sn", "uac_pcap"))
        inc = ev_b.wait(IncomingCall)
        ev_b.wait(RemoteHangup, inc.leg_id)
        assert inc.line == "b"
        assert not [e for e in settle(ev_a) if e.leg_id]


# ------------------------------------------------------------------ registration with digest auth
REGISTRAR = """
  <recv request="REGISTER"/>
  <send>
    <![CDATA[
      SIP/2.0 401 Unauthorized
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      WWW-Authenticate: Digest realm="gw.test", nonce="47364c23432d2e131a5fb210812c", algorithm=MD5
      Content-Length: 0
    ]]>
  </send>
  <recv request="REGISTER">
    <action>
      <verifyauth assign_to="authvalid" username="alice" password="s3cret"/>
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="good"/>
  <send next="end">
    <![CDATA[
      SIP/2.0 403 Forbidden
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <label id="good"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires=300
      Content-Length: 0
    ]]>
  </send>
  <label id="end"/>
"""


@pytest.mark.parametrize(("password", "state", "code"), [("s3cret", "up", "200"), ("wrong", "down", "403")])
def test_registration_with_digest_auth(tmp_path: Path, password: str, state: str, code: str) -> None:
    from drivers.line import LineStatus
    from tests.integration.sip_peers import finish_sipp, free_port, start_sipp

    cwd = sipp_dir(tmp_path)
    scen = write_scenario(cwd, "registrar", REGISTRAR)
    reg_port = free_port()
    proc, err = start_sipp(cwd, "", "-sf", str(scen), local_port=reg_port, timeout=30)
    try:
        time.sleep(0.5)
        with started_line(registrar=f"sip:127.0.0.1:{reg_port}", username="alice", password=password,
                          allowed_peers=()) as (line, events):
            status = events.wait(LineStatus)
            assert line.registered is (state == "up")
    finally:
        r = finish_sipp(proc, err, 30)
    assert (status.state, status.detail.split()[1]) == (state, code)
    assert r.returncode == 0, r.errors[-2000:]


def test_stop_with_calls_up_sends_bye_and_the_stack_restarts(tmp_path: Path) -> None:
    from tests.integration.sip_peers import finish_sipp, start_sipp

    cwd = sipp_dir(tmp_path)
    with started_line() as (line, events):
        Answerer(line, events)
        proc, err = start_sipp(cwd, f"127.0.0.1:{line.local_port()}", "-sn", "uac_pcap", calls=2, timeout=30)
        events.wait(IncomingCall, count=2)
        time.sleep(1.0)
        assert line.active_legs == 2
    # the line stopped with two calls up: each got a BYE (SIPp's uac_pcap did not expect it)
    r = finish_sipp(proc, err, 30)
    assert r.returncode != 0 and r.errors.count("unexpected BYE") >= 2
    # pjsua2 was destroyed with no Call left behind (else the process would have aborted); it starts again
    with started_line() as (line2, events2):
        Answerer(line2, events2)
        ok(run_sipp(cwd, f"127.0.0.1:{line2.local_port()}", "-sn", "uac_pcap"))
        inc = events2.wait(IncomingCall)
        events2.wait(RemoteHangup, inc.leg_id)
    assert not events.of(RemoteHangup)  # our own hang-up is not reported as the far end's


# ------------------------------------------------------------------ call slots reused back to back
SHORT_CALL = INVITE_SDP + """
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"/>
""" + ACK + """
  <pause milliseconds="150"/>
""" + BYE.replace("[cseq]", "2")


def log_lines(caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level and r.name.startswith("drivers.sip")]


def sipp_counter(r: SippResult, name: str) -> int:
    """A counter of SIPp's final statistics screen ("Successful call", "Failed call"), cumulative column."""
    for row in reversed(r.stdout.splitlines()):
        cells = row.split("|")
        if len(cells) == 3 and cells[0].strip() == name:
            return int(cells[2].split()[0])
    raise AssertionError(f"no {name!r} in SIPp's statistics:\n{r.stdout[-2000:]}")


@pytest.mark.parametrize("answer_after", [0.0, 0.3])
def test_back_to_back_calls_reuse_call_slots_cleanly(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                     answer_after: float) -> None:
    """Short calls placed as fast as the endpoint's call slots free up: every new INVITE lands in the slot the
    previous call just left (pjsua hands out slots round-robin and all others are busy). Each one is answered
    200 (at once, or 0.3 s after the INVITE as the daemon's engine may), recorded, and ended by the caller's
    BYE; no call is refused (603) or hung up (BYE) by the Call object of the slot's previous call."""
    cwd = sipp_dir(tmp_path)
    scen = write_scenario(cwd, "short", SHORT_CALL)
    n, keep = 48, 8
    caplog.set_level(logging.INFO, logger="drivers.sip")
    with started_line() as (line, events):
        line.finished_keep = keep
        answerer = Answerer(line, events, answer=not answer_after)
        timers: list[threading.Timer] = []
        if answer_after:
            def answer_later(ev: LineEvent) -> None:
                if isinstance(ev, IncomingCall):
                    port = answerer.ports[ev.leg_id] = RecPort()
                    timers.append(threading.Timer(answer_after, line.answer, (ev.leg_id, port)))
                    timers[-1].start()
            events.on_event = answer_later
        limit = min(line.max_calls, 4)  # all slots busy: a freed slot is taken again at once
        r = run_sipp(cwd, f"127.0.0.1:{line.local_port()}", "-sf", str(scen), calls=n, limit=limit, rate=100,
                     timeout=60)
        with contextlib.suppress(AssertionError):  # counted below
            events.wait(RemoteHangup, count=n, timeout=5)
        for t in timers:
            t.join()
        seen = settle(events)
        live = line.active_legs
        stats = {e.leg_id: line.leg_stats(e.leg_id) for e in events.of(IncomingCall)}
        kept = dict(line.finished_stats)
        totals, finished, lost = line.finished_totals, line.finished_legs, line.lost_slots
    incoming = [e for e in seen if isinstance(e, IncomingCall)]
    ends = {inc.leg_id: [(type(e).__name__, getattr(e, "reason", "")) for e in seen
                         if e.leg_id == inc.leg_id and e is not inc] for inc in incoming}
    clean = [leg for leg, got in ends.items() if got == [("RemoteHangup", "bye")]]
    recorded = [leg for leg in clean if answerer.ports[leg].frames]
    stat_errors = [m for m in log_lines(caplog) if "get_stream_stat" in m]
    # errors (pjsua2's failed calls: answer, hangup) and the driver's own warnings; pjsua's warnings about
    # ports it could not bind (then tried the next) are not the driver's business
    problems = [r.getMessage() for r in caplog.records if r.name.startswith("drivers.sip")
                and "get_stream_stat" not in r.getMessage()
                and (r.levelno >= logging.ERROR or (r.levelno >= logging.WARNING and r.name == "drivers.sip.line"))]
    figures = {"sipp_ok": sipp_counter(r, "Successful call"), "sipp_failed": sipp_counter(r, "Failed call"),
               "incoming": len(incoming), "ended_by_bye": len(clean),
               "recorded": len(recorded), "left_live": live, "lost_slots": lost, "stream_stat_errors": len(stat_errors),
               "other_warnings": len(problems)}
    assert figures == {"sipp_ok": n, "sipp_failed": 0, "incoming": n, "ended_by_bye": n, "recorded": n, "left_live": 0,
                       "lost_slots": 0, "stream_stat_errors": 0, "other_warnings": 0}, \
        (figures, [g for g in ends.values() if g != [("RemoteHangup", "bye")]][:5], problems[:5], r.errors[-1500:])
    ok(r)
    # finished legs: the counters of the last `keep` only, every leg in the totals
    ended_last = [e.leg_id for e in seen if isinstance(e, RemoteHangup)][-keep:]
    assert finished == n and list(kept) == ended_last
    assert [leg for leg, st in stats.items() if st is None] == [leg for leg in stats if leg not in kept]
    rx = {leg: len(port.frames) for leg, port in answerer.ports.items()}
    assert all(kept[leg].frames_rx == rx[leg] for leg in kept), [(kept[leg].frames_rx, rx[leg]) for leg in kept]
    assert totals.frames_rx == sum(rx.values()) and totals.port_errors == 0


# ------------------------------------------------------------------ stream stats over a call's life
SLOW_BYE_ANSWER = INVITE_SDP + """
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"/>
""" + ACK + """
  <recv request="BYE" timeout="20000"/>
  <pause milliseconds="1500"/>
""" + BYE_OK


# a re-INVITE that moves the call's audio to a second m-line (the first one refused, port 0)
REINVITE_AUDIO_MOVED = (INVITE_SDP.replace("CSeq: 1 INVITE", "CSeq: 2 INVITE")
                        .replace("m=audio [media_port] RTP/AVP 0 101",
                                 "m=audio 0 RTP/AVP 0 101\n      m=audio [media_port+2] RTP/AVP 0 101")
                        .replace("To: <sip:[service]@[remote_ip]:[remote_port]>",
                                 "To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]"))
AUDIO_MOVED = INVITE_SDP + """
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200"/>
""" + ACK + """
  <pause milliseconds="500"/>
""" + REINVITE_AUDIO_MOVED + """
  <recv response="100" optional="true"/>
  <recv response="200"/>
""" + ACK.replace("CSeq: 1 ACK", "CSeq: 2 ACK") + """
  <pause milliseconds="3000"/>
""" + BYE.replace("[cseq]", "3")


AudioPath = tuple[list[tuple[int, int]], list[int]]


def audio_path(line: SipLine, leg_id: str) -> AudioPath | None:
    """((m-line index, conference slot) of the call's active audio streams, slots the leg's port transmits
    to), read on the pjsua2 thread; None once the leg is gone."""
    def read() -> AudioPath | None:
        leg = line._legs.get(leg_id)
        if leg is None or leg.call is None:
            return None
        if leg.mport is None:  # not answered yet
            return [], []
        ci = leg.call.getInfo()  # kept: its media vector lives in it
        active = [(m.index, m.audioConfSlot) for m in ci.media if m.status == pj.PJSUA_CALL_MEDIA_ACTIVE]
        info = leg.mport.getPortInfo()
        return active, list(info.listeners)
    assert line._ep is not None
    return line._ep.call(read)


def poll_audio_path(line: SipLine, leg_id: str, until: Callable[[AudioPath], bool], timeout: float = 2.5) -> AudioPath:
    """:func:`audio_path` once ``until`` holds (bridge connections are applied by pjmedia's clock a tick
    later), or the last one read after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        path = audio_path(line, leg_id)
        assert path is not None, "the leg ended"
        if until(path) or time.monotonic() > deadline:
            return path
        time.sleep(0.05)


def sending_to_all(path: AudioPath) -> bool:
    return {slot for _, slot in path[0]} <= set(path[1])


def test_stream_stats_polled_only_while_the_call_has_a_stream(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The housekeeping tick reads each answered leg's RTP counters (every 0.2 s). Over three calls' lives
    (audio then the caller's BYE; our BYE answered 1.5 s late; audio moved to another m-line by a re-INVITE,
    the first stream gone) it never asks pjsua2 for the stats of a stream that is not there: no
    ``pjsua_call_get_stream_stat`` error lines. The leg's port follows the audio to its new stream."""
    cwd = sipp_dir(tmp_path)
    scen = write_scenario(cwd, "slowbye", SLOW_BYE_ANSWER)
    moved = write_scenario(cwd, "moved", AUDIO_MOVED)
    caplog.set_level(logging.DEBUG, logger="drivers.sip")
    with started_line() as (line, events):
        answerer = Answerer(line, events)
        proc, err = start_sipp(cwd, f"127.0.0.1:{line.local_port()}", "-sn", "uac_pcap", timeout=30)
        inc = events.wait(IncomingCall)
        slow, err2 = start_sipp(cwd, f"127.0.0.1:{line.local_port()}", "-sf", str(scen), timeout=30)
        inc2 = events.wait(IncomingCall, count=2)
        time.sleep(1.5)  # both calls run: their counters are read
        mid = line.leg_stats(inc.leg_id)
        line.hangup(inc2.leg_id)  # our BYE, answered 1.5 s later
        r2 = finish_sipp(slow, err2, 30)
        third, err3 = start_sipp(cwd, f"127.0.0.1:{line.local_port()}", "-sf", str(moved), timeout=30)
        inc3 = events.wait(IncomingCall, count=3)
        before = poll_audio_path(line, inc3.leg_id, lambda p: sending_to_all(p) and bool(p[0]))
        after = poll_audio_path(line, inc3.leg_id, lambda p: sending_to_all(p) and [i for i, _ in p[0]] == [1])
        r3 = finish_sipp(third, err3, 30)
        events.wait(RemoteHangup, inc3.leg_id)
        r1 = finish_sipp(proc, err, 30)
        events.wait(RemoteHangup, inc.leg_id)
        settle(events)
        live = line.active_legs
        final = line.leg_stats(inc.leg_id)
    ok(r1)
    ok(r2)
    ok(r3)
    assert answerer.ports[inc2.leg_id].frames and answerer.ports[inc3.leg_id].frames  # answered
    # the third call's audio: one stream (m-line 0), the port sends to it; after the re-INVITE the stream of
    # m-line 1, the port sends to that one
    assert [i for i, _ in before[0]] == [0] and sending_to_all(before), before
    assert [i for i, _ in after[0]] == [1] and sending_to_all(after), (before, after)
    assert live == 0
    assert mid is not None and mid.rtp_packets > 0  # the stats were read while the call was up
    assert final is not None and final.rtp_packets >= mid.rtp_packets
    assert [m for m in log_lines(caplog) if "stream_stat" in m] == []
