"""Callers that leave a message on the bundled voicemail handler: for the end-to-end tests and ``gatewayd
bench soak``.

The handler (gatewayd/handlers/voicemail.py) plays a greeting and a beep, records until ``#``, plays
the message back and hangs up. A caller therefore waits through the prompts, speaks, presses ``#`` and
waits for the gateway to hang up.

* :func:`voicemail_config`: a daemon config (dict, for YAML) whose every call goes to the voicemail handler;
* :func:`voicemail_prompts`: a short greeting (espeak-ng) and a beep, 8 kHz WAV bytes for the prompts bucket;
* :func:`message_audio`: what a SIP caller sends — silence over the prompts, the speech, the ``#`` tone
  in the audio (in-band DTMF), then silence while the message is played back;
* :func:`sipp_scenario` and :func:`write_sipp_files`: SIPp as that caller (INVITE, play the audio as
  PCMA RTP, wait for the gateway's BYE and answer it);
* :class:`ModemCaller`: the caller on the far side of an emulated voice modem
  (:class:`~drivers.emulators.modem.FakeV253Modem`): rings, waits until the prompts have played and the
  modem records again (it is half duplex), speaks, presses ``#`` (the tone on the line and the modem's
  ``DLE #`` report at the same sample), and waits for the gateway to go on-hook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivers.emulators.modem import CallerId, FakeV253Modem, ModemDevice
from gatewayd.testing.sipp import sipp_reply
from media.dtmf import dtmf_tone
from media.frame import FRAME_SAMPLES, SAMPLE_RATE, Samples
from media.tones import beep
from media.wav import encode_wav

log = logging.getLogger(__name__)

GREETING_TEXT = "Please leave a message after the tone."
MESSAGE_TEXT = "Hello, this is Alice. Please call me back about the delivery on Tuesday."
TONE_MS = 200  # the caller's '#'
BEEP_SAMPLES = 3200  # 0.4 s, as the README's voicemail example


def voicemail_config(state_dir: Path, *, sip_port: int, modems: Sequence[str | Path] = (),
                     buckets: Sequence[dict[str, Any]], environment: dict[str, str], metrics: str,
                     handler: str = "python:gatewayd.handlers.voicemail:handler",
                     log_level: str | None = None) -> dict[str, Any]:
    """One SIP line ``trunk`` on 127.0.0.1:``sip_port`` and one voice modem ``modem<k>`` per device in
    ``modems``; every call to application ``voicemail`` (``handler``, with ``environment``: its buckets and
    prefix); ``buckets`` as given (unknown buckets rejected); the metrics listener at ``metrics``."""
    cfg: dict[str, Any] = {"state_dir": str(state_dir)}
    if log_level is not None:
        cfg["log_level"] = log_level
    cfg["lines"] = [{"type": "sip", "name": "trunk", "bind_address": "127.0.0.1", "port": sip_port},
                    *({"type": "modem", "name": f"modem{k}", "device": str(dev), "rtscts": False}
                      for k, dev in enumerate(modems))]
    cfg["applications"] = [{"name": "voicemail", "handler": handler, "environment": dict(environment)}]
    cfg["rules"] = [{"name": "every-call", "trigger_type": "Line", "trigger_value": "*",
                     "target_applications": [{"application": "voicemail"}]}]
    cfg["buckets"] = list(buckets)
    cfg["media"] = {"unknown_buckets": "reject"}
    cfg["metrics"] = {"address": metrics}
    return cfg


def speak(text: str, voice: str = "en-us") -> Samples:
    """``text`` spoken by espeak-ng, 8 kHz int16 (raises if espeak-ng is missing or fails)."""
    from gatewayd.scenario import AudioItem, render

    return render(AudioItem(say=text, voice=voice), Path("."))


@dataclass(frozen=True)
class Prompts:
    greeting: Samples
    beep: Samples

    @property
    def samples(self) -> int:
        return len(self.greeting) + len(self.beep)

    def objects(self) -> dict[str, bytes]:
        """Keys (the handler's defaults) → WAV bytes, to put in the prompts bucket."""
        return {"voicemail/greeting.wav": encode_wav(self.greeting), "voicemail/beep.wav": encode_wav(self.beep)}


def voicemail_prompts(text: str = GREETING_TEXT) -> Prompts:
    return Prompts(greeting=speak(text), beep=beep(1000.0, -12.0, BEEP_SAMPLES))


@dataclass(frozen=True)
class Message:
    """What a caller sends: ``samples``; the speech starts at ``speech_at`` and '#' at ``tone_at``."""

    speech: Samples
    samples: Samples
    speech_at: int
    tone_at: int
    digit: str = "#"


def message_audio(speech: Samples, lead_s: float, tail_s: float, digit: str = "#",
                  gap_s: float = 0.5, tone_ms: int = TONE_MS) -> Message:
    """Silence for ``lead_s`` (the prompts), the speech, ``gap_s`` of silence, the digit's tone (in-band),
    then ``tail_s`` of silence (while the message is played back)."""
    lead = np.zeros(round(lead_s * SAMPLE_RATE), dtype=np.int16)
    gap = np.zeros(round(gap_s * SAMPLE_RATE), dtype=np.int16)
    tone = dtmf_tone(digit, tone_ms * SAMPLE_RATE // 1000, level_dbm0=-8.0)
    tail = np.zeros(round(tail_s * SAMPLE_RATE), dtype=np.int16)
    samples = np.concatenate([lead, speech, gap, tone, tail]).astype(np.int16)
    return Message(speech=speech, samples=samples, speech_at=len(lead), tone_at=len(lead) + len(speech) + len(gap),
                   digit=digit)


# ------------------------------------------------------------------ SIPp
def sipp_scenario(pcap: str, bye_timeout_ms: int = 60_000, pause_before_ms: int = 0) -> str:
    """A UAC that offers PCMA, plays ``pcap`` once answered and then waits for the far end's BYE (a call
    the gateway does not hang up within ``bye_timeout_ms`` fails). ``pause_before_ms``: wait before the
    INVITE (a call slot freed by a BYE is reused a moment later, as callers do)."""
    pause = f'  <pause milliseconds="{pause_before_ms}"/>\n' if pause_before_ms else ""
    hdr = ("      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
           "      From: voicemail-caller <sip:caller@[local_ip]:[local_port]>;tag=[pid]VM[call_number]\n"
           "      To: <sip:[service]@[remote_ip]:[remote_port]>{to_tag}\n"
           "      Call-ID: [call_id]\n")
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="leave a voicemail message">
{pause}  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{hdr.format(to_tag="")}      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio [auto_media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
      a=ptime:20
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{hdr.format(to_tag="[peer_tag_param]")}      CSeq: 1 ACK
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE" timeout="{bye_timeout_ms}"/>
{sipp_reply("200 OK", "Contact: <sip:caller@[local_ip]:[local_port]>", to_tag=False)}</scenario>
"""


def write_sipp_files(workdir: Path, message: Message, *, bye_timeout_ms: int = 60_000,
                     pause_before_ms: int = 0) -> Path:
    """``voicemail.pcap`` (the message as one PCMA RTP stream) and ``voicemail.xml`` in ``workdir``; returns
    the scenario's path (run SIPp with ``cwd=workdir``)."""
    from gatewayd.bench.sip import write_pcap

    workdir.mkdir(parents=True, exist_ok=True)
    n = -(-len(message.samples) // FRAME_SAMPLES) * FRAME_SAMPLES
    write_pcap(workdir / "voicemail.pcap", np.concatenate(
        [message.samples, np.zeros(n - len(message.samples), dtype=np.int16)]))
    path = workdir / "voicemail.xml"
    path.write_text(sipp_scenario("voicemail.pcap", bye_timeout_ms, pause_before_ms))
    return path


# ------------------------------------------------------------------ the emulated modem's caller
class CallerTimeout(AssertionError):
    """The gateway did not do what a voicemail caller waits for, in time."""


@dataclass
class ModemCallResult:
    codec: str  # the +VSM codec the gateway chose (the line's audio went through it)
    speech_at: int  # line sample (since off-hook) where the speech starts
    tone_at: int  # line sample where '#' starts (tone and DLE report)
    answered_after_s: float
    prompts_played: int  # samples the modem played before the caller spoke (greeting and beep)
    played_back: Samples | None  # what the modem played after '#' (the message), when ``keep_audio``


def _played_samples(dev: ModemDevice) -> int:
    return sum(len(s.played) // (2 if s.fmt == "s16le" else 1) for s in dev.tx_sessions)


class ModemCaller:
    """Leaves one voicemail message at a time through ``emu``; thread-safe against the emulator's thread."""

    def __init__(self, emu: FakeV253Modem, prompt_samples: int, *, poll_s: float = 0.02) -> None:
        self.emu = emu
        self.prompt_samples = prompt_samples
        self.poll_s = poll_s

    def _wait(self, what: str, pred: Callable[[ModemDevice], bool], timeout: float,
              stop: Callable[[], bool] | None = None) -> None:
        end = time.monotonic() + timeout
        while True:
            with self.emu.lock:
                if pred(self.emu.device):
                    return
            if stop is not None and stop():
                raise CallerTimeout(f"stopped while waiting: {what}")
            if time.monotonic() > end:
                raise CallerTimeout(f"modem caller: {what} did not happen within {timeout} s")
            time.sleep(self.poll_s)

    def call(self, speech: Samples, *, number: str = "5551234", lead_s: float = 0.5, gap_s: float = 0.5,
             digit: str = "#", timeout: float = 60.0, keep_audio: bool = True,
             stop: Callable[[], bool] | None = None) -> ModemCallResult:
        emu = self.emu
        with emu.lock:
            dev = emu.device
            if keep_audio:
                played0 = _played_samples(dev)
            else:  # a long run: forget the previous calls' observations
                dev.tx_sessions.clear()
                dev.received.clear()
                dev.commands.clear()
                dev.event_samples.clear()
                played0 = 0
        t0 = time.monotonic()
        emu.ring(CallerId(number=number, name="VOICEMAIL TEST"), rings=10)
        self._wait("answer (off-hook)", lambda d: d.off_hook and d.mode != "command", timeout, stop)
        answered = time.monotonic() - t0
        # the greeting and the beep go out (+VTX: what the caller says meanwhile is lost), then it records
        self._wait("greeting and beep, then recording (+VRX)",
                   lambda d: _played_samples(d) - played0 >= self.prompt_samples - FRAME_SAMPLES and d.mode == "vrx",
                   timeout, stop)
        with emu.lock:
            prompts = _played_samples(dev) - played0
            codec = str(dev.codec)
            speech_at = dev.play(np.concatenate([np.zeros(round(lead_s * SAMPLE_RATE), np.int16), speech]))
            speech_at += round(lead_s * SAMPLE_RATE)
        after_gap = speech_at + len(speech) + round(gap_s * SAMPLE_RATE)
        self._wait("the message spoken", lambda d: d.line_pos >= after_gap or not d.off_hook, timeout, stop)
        with emu.lock:
            if not dev.off_hook:
                raise CallerTimeout("the gateway hung up while the caller was speaking")
            played1 = _played_samples(dev)
            tone_at = dev.play(dtmf_tone(digit, TONE_MS * SAMPLE_RATE // 1000, level_dbm0=-8.0))
            at = dev.send_dtmf(digit, on_ms=TONE_MS, off_ms=100)
            if at != tone_at:  # queued audio still ahead: the tone and the report would not coincide
                raise CallerTimeout(f"'{digit}' tone at {tone_at} but its report at {at}")
        # the message is stored, played back (+VTX), then the gateway hangs up (ATH)
        self._wait("the gateway hanging up", lambda d: not d.off_hook, timeout, stop)
        played_back = None
        if keep_audio:
            with emu.lock:
                played_back = dev.transmitted()[played1:]
        return ModemCallResult(codec=codec, speech_at=speech_at, tone_at=tone_at, answered_after_s=answered,
                               prompts_played=prompts, played_back=played_back)
