"""Scenario files for ``gatewayd simulate``: one call, its handler, the caller, and the far ends.

Parsed with the config loader, so mistakes are reported as ``file:line:col`` with "did you mean".
Audio in a scenario is a WAV file (any PCM format; relative to the scenario file), a tone, silence,
or speech rendered by espeak-ng. See the README section "Trying a handler without a phone".
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from drivers.virtual import Caller, Digits, FarEnd, Party
from gatewayd.config.loader import ConfigError, Problem, load_file
from gatewayd.config.model import HANDLER_RE, doc
from media.frame import SAMPLE_RATE, Samples
from media.levels import dbm0_to_rms
from media.tones import tone
from media.wav import WavError, decode_wav, read_wav


@dataclass(frozen=True)
class ToneSpec:
    freqs: tuple[float, ...] = field(metadata=doc("Frequencies in Hz (one for a tone, two for a dual tone)."))
    seconds: float = field(default=1.0, metadata=doc("Length.", min=0))
    level_dbm0: float = field(default=-15.0, metadata=doc("Level per frequency in dBm0.", max=3))


@dataclass(frozen=True)
class NoiseSpec:
    color: Literal["white", "pink", "brown"] = field(default="white", metadata=doc("Noise spectrum."))
    seconds: float = field(default=10.0, metadata=doc("Length.", min=0))
    level_dbm0: float = field(default=-35.0, metadata=doc("Level in dBm0 (RMS).", max=3))
    seed: int = field(default=1, metadata=doc("Random seed (the same noise every run)."))


@dataclass(frozen=True)
class AudioItem:
    at: float = field(default=0.0, metadata=doc("Start, in seconds after the answer.", min=0))
    wav: Path | None = field(default=None, metadata=doc("A WAV file (relative to the scenario)."))
    tone: ToneSpec | None = field(default=None, metadata=doc("A synthesised tone."))
    say: str | None = field(default=None, metadata=doc("Text spoken by espeak-ng."))
    noise: NoiseSpec | None = field(default=None, metadata=doc("Background noise."))
    voice: str = field(default="en-us", metadata=doc("espeak-ng voice for say."))
    gain_db: float = field(default=0.0, metadata=doc("Gain applied to this item."))

    def check(self) -> list[tuple[str, str]]:
        given = [k for k in ("wav", "tone", "say", "noise") if getattr(self, k) is not None]
        if len(given) != 1:
            return [("wav", "give exactly one of wav, tone, say, noise")]
        return []


@dataclass(frozen=True)
class DigitsItem:
    at: float = field(metadata=doc("When the first key is pressed, seconds after the answer.", min=0))
    digits: str = field(metadata=doc("Keys 0-9 * # A-D; ',' waits 0.5 s.", pattern=r"[0-9*#A-Da-d,]+"))
    mode: Literal["inband", "rfc4733"] = field(default="inband", metadata=doc(
        "inband: tones in the audio; rfc4733: out-of-band events."))
    tone_ms: int = field(default=100, metadata=doc("Tone length per key.", min=10, max=5000))
    gap_ms: int = field(default=100, metadata=doc("Silence between keys.", min=10, max=5000))


@dataclass(frozen=True)
class CallerSpec:
    from_: str = field(default="+15550100001", metadata=doc("Caller number (From)."))
    to: str = field(default="+15550100000", metadata=doc("Called number (To)."))
    headers: Mapping[str, str] = field(default_factory=dict, metadata=doc("X- headers of the inbound leg."))
    audio: tuple[AudioItem, ...] = field(default=(), metadata=doc("What the caller says or plays."))
    digits: tuple[DigitsItem, ...] = field(default=(), metadata=doc("Keys the caller presses."))
    hangup_at: float | None = field(default=None, metadata=doc("Caller hangs up at this time (after answer).",
                                                               min=0))


@dataclass(frozen=True)
class FarEndSpec:
    answer_after: float | None = field(default=1.0, metadata=doc("Seconds of ringing; null: never answers."))
    busy: bool = field(default=False, metadata=doc("Answers busy (486)."))
    audio: tuple[AudioItem, ...] = field(default=(), metadata=doc("What the far end says or plays."))
    digits: tuple[DigitsItem, ...] = field(default=(), metadata=doc("Keys the far end presses."))
    hangup_at: float | None = field(default=None, metadata=doc("Far end hangs up (after its answer).", min=0))


@dataclass(frozen=True)
class BucketSpec:
    files: Mapping[str, AudioItem] = field(default_factory=dict, metadata=doc(
        "Objects to put in the bucket before the call (key: audio), e.g. prompts."))


@dataclass(frozen=True)
class Scenario:
    handler: str = field(metadata=doc("The handler target (python:..., http(s)://..., arn:aws:lambda:...)."))
    caller: CallerSpec = field(default_factory=CallerSpec, metadata=doc("The inbound caller."))
    environment: Mapping[str, str] = field(default_factory=dict, metadata=doc("Handler environment variables."))
    buckets: Mapping[str, BucketSpec] = field(default_factory=dict, metadata=doc(
        "Local-directory buckets and their initial objects; recordings land here too."))
    far_ends: Mapping[str, FarEndSpec] = field(default_factory=dict, metadata=doc(
        "Far ends that CallAndBridge dials, by the number or URI dialled."))
    default_far_end: FarEndSpec | None = field(default=None, metadata=doc("Answers any other number dialled."))
    max_seconds: float = field(default=600.0, metadata=doc("Stop the simulation after this much media time.", min=1))
    voicefocus: bool = field(default=True, metadata=doc("Make VoiceFocus available."))

    def check(self) -> list[tuple[str, str]]:
        if not HANDLER_RE.match(self.handler):
            return [("handler", f"{self.handler!r} is not a handler target")]
        return []


def load_scenario(path: str | Path) -> Scenario:
    return load_file(path, Scenario)[0]


def render(item: AudioItem, base: Path) -> Samples:
    """The samples of one audio item (8 kHz mono int16)."""
    if item.wav is not None:
        p = item.wav if item.wav.is_absolute() else base / item.wav
        try:
            x = read_wav(p)
        except WavError as e:
            raise ConfigError([Problem(str(p), 1, 1, str(e))]) from None
    elif item.tone is not None:
        x = tone(item.tone.freqs, item.tone.level_dbm0, int(item.tone.seconds * SAMPLE_RATE))
    elif item.noise is not None:
        x = _noise(item.noise)
    else:
        try:
            out = subprocess.run(["espeak-ng", "--stdout", "-v", item.voice, "--", item.say or ""],
                                 capture_output=True, check=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError) as e:
            raise ConfigError([Problem(str(base), 1, 1, f"espeak-ng failed for {item.say!r}: {e}")]) from None
        x = decode_wav(out)
    if item.gain_db:
        x = np.clip(np.rint(x * 10 ** (item.gain_db / 20)), -32768, 32767).astype(np.int16)
    return x


def _noise(spec: NoiseSpec) -> Samples:
    n = int(spec.seconds * SAMPLE_RATE)
    white = np.random.default_rng(spec.seed).standard_normal(n)
    if spec.color == "white":
        y = white
    else:
        spectrum = np.fft.rfft(white)
        f = np.arange(len(spectrum), dtype=float)
        f[0] = 1.0
        spectrum /= np.sqrt(f) if spec.color == "pink" else f  # 1/f power or 1/f² power
        y = np.fft.irfft(spectrum, n)
    y = y / (np.sqrt(np.mean(y * y)) or 1.0) * dbm0_to_rms(spec.level_dbm0)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def _party(kind: type[Party], spec: CallerSpec | FarEndSpec, base: Path) -> Party:
    audio = [(a.at, render(a, base)) for a in spec.audio]
    digits = [Digits(d.at, d.digits.upper(), d.mode, d.tone_ms, d.gap_ms) for d in spec.digits]
    if isinstance(spec, CallerSpec):
        return Caller(audio=audio, digits=digits, hangup_at=spec.hangup_at, caller=spec.from_, called=spec.to,
                      headers=dict(spec.headers))
    return FarEnd(audio=audio, digits=digits, hangup_at=spec.hangup_at, answer_after=spec.answer_after,
                  busy=spec.busy)


def build_caller(s: Scenario, base: Path) -> Caller:
    p = _party(Caller, s.caller, base)
    assert isinstance(p, Caller)
    return p


def build_far_ends(s: Scenario, base: Path) -> tuple[dict[str, FarEnd], FarEnd | None]:
    def one(spec: FarEndSpec) -> FarEnd:
        p = _party(FarEnd, spec, base)
        assert isinstance(p, FarEnd)
        return p
    return ({k: one(v) for k, v in s.far_ends.items()},
            one(s.default_far_end) if s.default_far_end is not None else None)
