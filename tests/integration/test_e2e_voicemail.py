"""End to end: ``gatewayd run`` as a subprocess, the bundled voicemail handler in-process, recordings in a
real S3-compatible server (SeaweedFS); one call from SIPp over the SIP trunk and one through an emulated
voice modem on a real pty, at the same time.

Each caller waits through the greeting and the beep, speaks (espeak-ng), presses '#' (in-band on SIP; on
the modem the tone is on the line and the modem reports it as ``DLE #``) and waits for the gateway to
play the message back and hang up. Checked from outside the daemon only: the WAV objects in the bucket
(boto3), the handler's transcript (a wrapper handler appends each invocation to a JSONL file), the
Prometheus endpoint, and the callers' own view (SIPp got the BYE; the modem played the message back).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from drivers.emulators.modem import FakeV253Modem, line_roundtrip
from gatewayd.runtime.ops import TERMINATOR_GUARD
from gatewayd.testing.prometheus import scrape
from gatewayd.testing.seaweedfs import SeaweedS3
from gatewayd.testing.voicemail_callers import (
    MESSAGE_TEXT,
    Message,
    ModemCaller,
    ModemCallResult,
    message_audio,
    speak,
    voicemail_config,
    voicemail_prompts,
    write_sipp_files,
)
from media import g711
from media.dtmf import detect
from media.frame import SAMPLE_RATE, Samples
from media.wav import decode_wav
from tests.integration.daemon_proc import running_daemon
from tests.integration.sip_peers import finish_sipp, free_port, match, need, start_sipp
from tests.transcript_handler import read as read_transcript

pytest.importorskip("pjsua2", reason="pjsua2 is the SIP stack under test (pip install gatewayd[sip])")
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

PROMPTS = "vm-prompts"
MESSAGES = "vm-messages"


# ------------------------------------------------------------------ checks
def check_message(rec: Samples, reference: Samples, speech_at: int, tone_at: int) -> None:
    """The recording holds the speech as sent and stops just before the '#' tone, with no DTMF left in it."""
    m = match(reference, rec, max_lag=len(rec))
    assert m.good(), m
    tone_in_rec = m.lag + (tone_at - speech_at)  # where the '#' tone began, in recording samples
    assert tone_in_rec - TERMINATOR_GUARD - 320 <= len(rec) <= tone_in_rec - TERMINATOR_GUARD + 40, (
        len(rec), tone_in_rec)
    assert detect(rec) == [], "a DTMF tone was left in the recording"
    assert detect(rec[-SAMPLE_RATE:]) == []  # the tail, on its own (the detector's state starts fresh)


def transcript_of(invocations: list[dict[str, Any]], caller: str) -> list[dict[str, Any]]:
    """The invocations of the call from ``caller`` (LEG-A's From)."""
    tx = {i["event"]["CallDetails"]["TransactionId"] for i in invocations
          if i["event"]["InvocationEventType"] == "NEW_INBOUND_CALL"
          and i["event"]["CallDetails"]["Participants"][0]["From"] == caller}
    assert len(tx) == 1, (caller, tx)
    return [i for i in invocations if i["event"]["CallDetails"]["TransactionId"] in tx]


def check_transcript(invocations: list[dict[str, Any]]) -> str:
    """NEW_INBOUND_CALL → greeting, beep, RecordAudio; ACTION_SUCCESSFUL (RecordAudio, '#') → play it back,
    hang up; HANGUP. Returns the recording's key."""
    events = [i["event"] for i in invocations]
    assert [e["InvocationEventType"] for e in events] == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL", "HANGUP"]
    assert [e["Sequence"] for e in events] == [1, 2, 3]
    first = invocations[0]["response"]["Actions"]
    assert [a["Type"] for a in first] == ["PlayAudio", "PlayAudio", "RecordAudio"]
    assert [a["Parameters"]["AudioSource"]["Key"] for a in first[:2]] == ["voicemail/greeting.wav",
                                                                          "voicemail/beep.wav"]
    done = events[1]["ActionData"]
    assert done["Type"] == "RecordAudio" and done["RecordingTerminatorUsed"] == "#"
    dest = done["RecordingDestination"]
    assert dest["BucketName"] == MESSAGES and dest["Key"].startswith("messages/") and dest["Key"].endswith(".wav")
    second = invocations[1]["response"]["Actions"]
    assert [a["Type"] for a in second] == ["PlayAudio", "Hangup"]
    assert second[0]["Parameters"]["AudioSource"]["Key"] == dest["Key"]
    assert events[2]["ActionData"]["Type"] == "Hangup"
    assert events[2]["CallDetails"]["TransactionAttributes"]["RecordingKey"] == dest["Key"]
    key: str = dest["Key"]
    return key


# ------------------------------------------------------------------ the test
def test_voicemail_over_sip_and_modem_into_s3(tmp_path: Path, s3_server: SeaweedS3) -> None:
    need("sipp")
    need("espeak-ng")
    s3 = s3_server
    client = s3.client()
    for b in (PROMPTS, MESSAGES):
        s3.create_bucket(b)
    prompts = voicemail_prompts()
    for key, data in prompts.objects().items():
        client.put_object(Bucket=PROMPTS, Key=key, Body=data)
    speech = speak(MESSAGE_TEXT)
    assert len(speech) > 2 * SAMPLE_RATE

    # SIP: silence over the prompts (and answer and fetch time), the speech, then '#' in-band
    sip_msg: Message = message_audio(speech, lead_s=prompts.samples / SAMPLE_RATE + 1.5, tail_s=1.0)
    assert [e.digit for e in detect(sip_msg.samples)] == ["#"]  # the detector sees the caller's '#' as sent
    sipp_cwd = tmp_path / "sipp"
    scenario = write_sipp_files(sipp_cwd, sip_msg, bye_timeout_ms=60_000)

    emu = FakeV253Modem("usr5637", link=tmp_path / "ttyMODEM0", ring_on_s=0.3, ring_off_s=0.5).start()
    transcript = tmp_path / "transcript.jsonl"
    sip_port = free_port()
    metrics = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    cfg = voicemail_config(
        tmp_path / "state", sip_port=sip_port, modems=[emu.path], handler="python:tests.transcript_handler:voicemail",
        environment={"GATEWAYD_TRANSCRIPT": str(transcript), "VOICEMAIL_PROMPTS_BUCKET": PROMPTS,
                     "VOICEMAIL_BUCKET": MESSAGES, "VOICEMAIL_PREFIX": "messages"},
        buckets=[{"type": "s3", "name": b, "endpoint_url": s3.endpoint_url, "region": s3.credentials.region,
                  "addressing_style": "path"} for b in (PROMPTS, MESSAGES)],
        metrics=metrics)
    modem_result: dict[str, ModemCallResult] = {}
    modem_error: list[BaseException] = []
    try:
        with running_daemon(tmp_path / "daemon", cfg, env=s3.env()) as daemon:
            sipp, sipp_err = start_sipp(sipp_cwd, f"127.0.0.1:{sip_port}", "-sf", str(scenario), "-s", "voicemail",
                                        timeout=90)

            def modem_call() -> None:
                try:
                    modem_result["r"] = ModemCaller(emu, prompts.samples).call(speech, number="5551234", timeout=60)
                except BaseException as e:  # re-raised in the test's thread
                    modem_error.append(e)

            caller = threading.Thread(target=modem_call, name="modem-caller")
            caller.start()
            sipp_res = finish_sipp(sipp, sipp_err, 90)
            caller.join(90)
            assert sipp_res.returncode == 0, (sipp_res.stderr[-2000:], sipp_res.errors[-2000:])
            if modem_error:
                raise modem_error[0]
            assert "r" in modem_result, "the modem call did not finish"
            # every upload has been confirmed before ACTION_SUCCESSFUL; the HANGUP invocations may lag a little
            end = time.monotonic() + 10
            while len(read_transcript(transcript)) < 6 and time.monotonic() < end:
                time.sleep(0.1)
            m = scrape(metrics)
            assert daemon.stop(60) == 0, daemon.stderr()[-3000:]  # a graceful stop
    finally:
        emu.stop()

    invocations = read_transcript(transcript)
    assert len(invocations) == 6
    sip_key = check_transcript(transcript_of(invocations, "caller"))
    modem_tr = transcript_of(invocations, "5551234")
    modem_key = check_transcript(modem_tr)

    # the bucket holds exactly the two messages the handler was told about
    listed = client.list_objects_v2(Bucket=MESSAGES, Prefix="messages/")
    assert sorted(o["Key"] for o in listed.get("Contents", [])) == sorted([sip_key, modem_key])
    sip_obj = client.get_object(Bucket=MESSAGES, Key=sip_key)
    sip_tx = transcript_of(invocations, "caller")[0]["event"]["CallDetails"]["TransactionId"]
    assert sip_obj["Metadata"].get("transaction-id") == sip_tx
    sip_rec = decode_wav(sip_obj["Body"].read())
    check_message(sip_rec, g711.alaw_decode(g711.alaw_encode(speech)), sip_msg.speech_at, sip_msg.tone_at)

    r = modem_result["r"]
    modem_rec = decode_wav(client.get_object(Bucket=MESSAGES, Key=modem_key)["Body"].read())
    line_speech = line_roundtrip(r.codec, speech)  # type: ignore[arg-type]
    check_message(modem_rec, line_speech, r.speech_at, r.tone_at)
    assert r.prompts_played >= prompts.samples - 160
    # the caller heard its message played back from the bucket before the gateway hung up
    assert r.played_back is not None
    back = match(line_speech, r.played_back, max_lag=len(r.played_back))
    assert back.good(), back

    # metrics after both calls
    assert m.value("gatewayd_calls_total", line="trunk", outcome="completed") == 1
    assert m.value("gatewayd_calls_total", line="modem0", outcome="completed") == 1
    assert m.value("gatewayd_calls_total") == 2
    assert m.value("gatewayd_upload_latency_seconds_count") == 2
    assert m.value("gatewayd_recordings_total", outcome="uploaded") == 2
    assert m.value("gatewayd_handler_latency_seconds_count", application="voicemail") == 6
    assert m.value("gatewayd_live_calls") == 0
    assert "gatewayd_frames_dropped_total" in m.samples
