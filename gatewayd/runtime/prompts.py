"""Prompts: WAV objects from buckets (any PCM format, converted to 8 kHz mono) and local text-to-speech.

Fetching and decoding run in a worker thread, never on the control loop. Decoded prompts are cached
briefly (keyed by bucket and key), so a greeting played on every call is read once; expired entries are
dropped as new ones come in and the cache holds at most ``CACHE_BYTES`` of audio, so objects played once
(a message played back to its caller) do not pile up.
Speak uses espeak-ng (``media.tts_command``) in place of Amazon Polly: the Polly ``VoiceId`` picks a
female or male variant and ``LanguageCode`` the espeak-ng voice; SSML is passed through with ``-m``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from gatewayd.runtime.services import AudioSourceError
from media.frame import Samples
from media.wav import WavError, decode_wav

log = logging.getLogger(__name__)

MAX_PROMPT_BYTES = 50 * 1024 * 1024  # Chime's PlayAudio limit
CACHE_TTL_S = 30.0
CACHE_BYTES = 4 * 1024 * 1024
TTS_TIMEOUT_S = 30.0
POLLY_FEMALE = frozenset({
    "Joanna", "Salli", "Kimberly", "Kendra", "Ivy", "Ruth", "Danielle", "Amy", "Emma", "Olivia", "Nicole",
    "Aditi", "Raveena", "Kajal", "Aria", "Ayanda", "Niamh", "Lea", "Celine", "Vicki", "Marlene", "Conchita",
    "Lucia", "Lupe", "Mia", "Penelope", "Camila", "Vitoria", "Ines", "Carla", "Bianca", "Mizuki", "Takumi",
    "Seoyeon", "Zhiyu", "Tatyana", "Astrid", "Liv", "Naja", "Lotte", "Ewa", "Maja", "Carmen", "Filiz", "Gwyneth",
    "Dora", "Hannah", "Gabrielle", "Chantal", "Elin", "Ida", "Suvi", "Laura", "Isabelle",
})


class PromptLoader:
    def __init__(self, fetch: Callable[[str, str], bytes], tts_command: Sequence[str] = ("espeak-ng",),
                 cache_size: int = 64, cache_bytes: int = CACHE_BYTES) -> None:
        self._fetch = fetch
        self._tts = tuple(tts_command)
        self._cache: OrderedDict[tuple[str, ...], tuple[float, Samples]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_bytes = cache_bytes

    def _cached(self, key: tuple[str, ...]) -> Samples | None:
        hit = self._cache.get(key)
        if hit is None or time.monotonic() - hit[0] > CACHE_TTL_S:
            return None
        self._cache.move_to_end(key)
        return hit[1]

    def _remember(self, key: tuple[str, ...], samples: Samples) -> None:
        now = time.monotonic()
        for k in [k for k, (t, _) in self._cache.items() if now - t > CACHE_TTL_S]:
            del self._cache[k]
        if samples.nbytes > self._cache_bytes:
            return
        self._cache[key] = (now, samples)
        total = self.cached_bytes()
        while len(self._cache) > self._cache_size or total > self._cache_bytes:
            _, (_, old) = self._cache.popitem(last=False)
            total -= old.nbytes

    def cached_bytes(self) -> int:
        return sum(s.nbytes for _, s in self._cache.values())

    def _fetch_and_decode(self, bucket: str, key: str) -> Samples:
        try:
            data = self._fetch(bucket, key)
        except Exception as e:
            raise AudioSourceError(f"cannot read s3://{bucket}/{key}: {e}") from e
        if len(data) > MAX_PROMPT_BYTES:
            raise AudioSourceError(f"s3://{bucket}/{key} is larger than 50 MB")
        try:
            return decode_wav(data)
        except WavError as e:
            raise AudioSourceError(f"s3://{bucket}/{key}: {e}") from e

    async def load(self, bucket: str, key: str) -> Samples:
        ck = ("s3", bucket, key)
        hit = self._cached(ck)
        if hit is not None:
            return hit
        samples = await asyncio.to_thread(self._fetch_and_decode, bucket, key)
        self._remember(ck, samples)
        return samples

    async def speak(self, text: str, *, ssml: bool, voice_id: str, language_code: str | None,
                    engine: str) -> Samples:
        lang = (language_code or "en-US").lower()
        variant = "+f3" if voice_id in POLLY_FEMALE else "+m3"
        ck = ("tts", text, str(ssml), lang, variant)
        hit = self._cached(ck)
        if hit is not None:
            return hit
        cmd = [*self._tts, "--stdout", "-v", lang + variant, *(["-m"] if ssml else []), "--", text]
        try:
            proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), TTS_TIMEOUT_S)
        except (OSError, TimeoutError) as e:
            raise AudioSourceError(f"text-to-speech ({self._tts[0]}) failed: {e}") from e
        if proc.returncode != 0 or not out:
            why = err.decode(errors="replace")[:200]
            raise AudioSourceError(f"text-to-speech exited with {proc.returncode}: {why}")
        try:
            samples = await asyncio.to_thread(decode_wav, out)
        except WavError as e:
            raise AudioSourceError(f"text-to-speech produced no audio: {e}") from e
        self._remember(ck, samples)
        return samples
