"""What the call runtime needs from the rest of the daemon, as small protocols.

The composition root (``gatewayd.daemon``) and ``gatewayd simulate`` plug real implementations in:
the prompt loader and text-to-speech engine (``gatewayd.runtime.prompts``) and the DSP factories.
Handler invokers are ``gatewayd.invokers.Invoker``; the recording store is ``gatewayd.store``.
"""

from __future__ import annotations

from collections.abc import Callable
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


@dataclass(frozen=True)
class MediaFactories:
    """Per-leg DSP objects: in-band DTMF detector and VoiceFocus suppressor (None: not available)."""

    dtmf_detector: Callable[[], Any] | None = None
    suppressor: Callable[[], Any] | None = None
    load_suppressor: Callable[[], None] | None = None  # blocking; run off the media path before suppressor()
    dtmf_generator: Callable[[str, int, int], Samples] | None = None  # (digits incl. ',', tone_ms, gap_ms) → samples
