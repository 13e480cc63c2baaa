"""What the call runtime needs from the rest of the daemon, as small protocols.

The composition root (``gatewayd.daemon``) and ``gatewayd simulate`` plug real implementations in:
the recording store and buckets (``gatewayd.store``), the prompt loader and the text-to-speech engine
(``gatewayd.runtime.prompts``). Handler invokers are ``gatewayd.invokers.Invoker``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from media.frame import Samples


class AudioSourceError(Exception):
    """A prompt could not be fetched or decoded (→ InvalidAudioSource)."""


class Prompts(Protocol):
    async def load(self, bucket: str, key: str) -> Samples:
        """8 kHz mono int16 samples of a WAV object in a bucket (any PCM format, converted)."""
        ...

    async def speak(self, text: str, *, ssml: bool, voice_id: str, language_code: str | None,
                    engine: str) -> Samples:
        """Speech for ``text`` from the local TTS engine, 8 kHz mono int16."""
        ...


class SpoolError(Exception):
    """The recording spool cannot take a recording (disk full, unwritable): the call goes on."""


@dataclass(frozen=True)
class UploadOutcome:
    ok: bool
    bucket: str
    key: str
    error: str = ""


class Recording(Protocol):
    """One recording being written: the media worker writes, the runtime awaits the outcome."""

    def write(self, samples: Samples) -> None: ...

    def finish(self, keep_samples: int) -> None: ...

    def outcome(self) -> Awaitable[UploadOutcome]:
        """Resolves when the object is confirmed in its bucket, or as failed once the upload wait is
        over (the recording then stays spooled and keeps being retried)."""
        ...


class RecordingStore(Protocol):
    def open(self, *, bucket: str, key: str, metadata: Mapping[str, str], channels: int = 1) -> Recording:
        """Start a spooled recording (raises SpoolError)."""
        ...

    def bucket_known(self, bucket: str) -> bool: ...


@dataclass(frozen=True)
class MediaFactories:
    """Per-leg DSP objects: in-band DTMF detector and VoiceFocus suppressor (None: not available)."""

    dtmf_detector: Callable[[], Any] | None = None
    suppressor: Callable[[], Any] | None = None
    dtmf_generator: Callable[[str, int, int], Samples] | None = None  # (digits incl. ',', tone_ms, gap_ms) → samples
