"""Handler scripts and call steps the scenarios share (see :mod:`hil.handler` for the script format)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import signal

from hil.dut import PROMPTS, RECORDINGS, Dut
from hil.simulator import CallerId, LineSimulator, SimCall
from media.frame import SAMPLE_RATE, Samples

ANSWER_S = 20.0  # ring to off-hook, generously (a quick cadence answers on ring 2 in ~2 s)
CALLER = CallerId(number="5551234567", name="DOE JOHN")


def hangup() -> dict[str, Any]:
    return {"Type": "Hangup", "Parameters": {"CallId": "{CallId}", "SipResponseCode": "0"}}


def pause(ms: int) -> dict[str, Any]:
    return {"Type": "Pause", "Parameters": {"CallId": "{CallId}", "DurationInMilliseconds": str(ms)}}


def record(prefix: str, *, max_s: int = 30, silence_s: int | None = None, threshold: int = 200,
           terminators: Sequence[str] = ("#",)) -> dict[str, Any]:
    p: dict[str, Any] = {"CallId": "{CallId}", "DurationInSeconds": str(max_s),
                         "RecordingTerminators": list(terminators),
                         "RecordingDestination": {"Type": "S3", "BucketName": RECORDINGS, "Prefix": prefix}}
    if silence_s is not None:
        p["SilenceDurationInSeconds"] = str(silence_s)
        p["SilenceThreshold"] = str(threshold)
    return {"Type": "RecordAudio", "Parameters": p}


def play_and_get_digits(key: str, *, min_digits: int = 1, max_digits: int = 4, terminators: Sequence[str] = ("#",),
                        between_ms: int = 3000, repeat: int = 1, repeat_ms: int = 8000) -> dict[str, Any]:
    source = {"Type": "S3", "BucketName": PROMPTS, "Key": key}
    return {"Type": "PlayAudioAndGetDigits",
            "Parameters": {"CallId": "{CallId}", "AudioSource": source, "FailureAudioSource": source,
                           "MinNumberOfDigits": min_digits, "MaxNumberOfDigits": max_digits,
                           "TerminatorDigits": list(terminators), "InBetweenDigitsDurationInMilliseconds": between_ms,
                           "Repeat": repeat, "RepeatDurationInMilliseconds": repeat_ms}}


def receive_digits(regex: str = r"\d", between_ms: int = 500, flush_ms: int = 1000) -> dict[str, Any]:
    return {"Type": "ReceiveDigits",
            "Parameters": {"CallId": "{CallId}", "InputDigitsRegex": regex, "InBetweenDigitsDurationInMilliseconds":
                           between_ms, "FlushDigitsDurationInMilliseconds": flush_ms}}


def speechlike(seconds: float, seed: int, level: float = 3000.0) -> Samples:
    """Band-limited (300–3400 Hz) noise under a 4 Hz envelope: voice-like level and spectrum, sharp
    correlation peak, and no DTMF."""
    rng = np.random.default_rng(seed)
    sos = signal.butter(6, [300, 3400], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(round(seconds * SAMPLE_RATE)))
    t = np.arange(len(x)) / SAMPLE_RATE
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    out: Samples = np.clip(np.rint(x / np.std(x) * level), -32768, 32767).astype(np.int16)
    return out


def locate(haystack: Samples, needle: Samples) -> tuple[int, float]:
    """Lag of ``needle`` in ``haystack`` and the normalised correlation there."""
    h = haystack.astype(np.float64)
    n = needle.astype(np.float64)
    if len(h) < len(n):
        return 0, 0.0
    c = signal.correlate(h, n, mode="valid", method="fft")
    lag = int(np.argmax(c))
    seg = h[lag:lag + len(n)]
    denom = float(np.linalg.norm(seg) * np.linalg.norm(n))
    return lag, float(np.dot(seg, n) / denom) if denom else 0.0


def call_in(line: LineSimulator, dut: Dut, caller: CallerId | None = CALLER, *, max_rings: int = 10) -> SimCall:
    """Ring, and wait until the DUT answered and the handler got NEW_INBOUND_CALL."""
    call = line.ring(caller, max_rings=max_rings)
    assert line.wait_answered(ANSWER_S), f"not answered; DUT log:\n{dut.log_text()[-3000:]}"
    dut.wait_event("NEW_INBOUND_CALL", 10)
    return call


def participant(entry: dict[str, Any]) -> dict[str, Any]:
    parts = (entry["event"].get("CallDetails") or {}).get("Participants") or [{}]
    first: dict[str, Any] = parts[0]
    return first


def action_data(entry: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = entry["event"].get("ActionData") or {}
    return data


GREETING_S = 6.0


def standard_prompts() -> dict[str, Samples]:
    """Prompts put in the DUT's prompt bucket: a 6 s voice-like greeting and a 0.3 s 1 kHz beep."""
    t = np.arange(round(0.3 * SAMPLE_RATE)) / SAMPLE_RATE
    beep = np.rint(6000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    return {"greeting.wav": speechlike(GREETING_S, seed=100), "beep.wav": beep}


def loud_seconds(x: Samples, threshold: float = 500.0) -> float:
    """How much of ``x`` is loud (20 ms frames with mean |sample| over ``threshold``)."""
    n = len(x) // 160
    if n == 0:
        return 0.0
    frames = np.abs(x[:n * 160].astype(np.int32)).reshape(n, 160).mean(axis=1)
    return float(np.count_nonzero(frames > threshold)) * 0.02
