"""The prompt cache (gatewayd/runtime/prompts.py): a greeting is fetched once, objects played once do not
pile up (bounded in bytes, expired entries dropped)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from gatewayd.runtime import prompts
from gatewayd.runtime.prompts import CACHE_BYTES, CACHE_TTL_S, PromptLoader
from media.wav import encode_wav


class Bucket:
    def __init__(self, seconds: float) -> None:
        self.wav = encode_wav(np.full(int(seconds * 8000), 1000, dtype=np.int16))
        self.fetches: list[str] = []

    def __call__(self, bucket: str, key: str) -> bytes:
        self.fetches.append(key)
        return self.wav


def load(loader: PromptLoader, key: str) -> np.ndarray:
    return asyncio.run(loader.load("b", key))


def test_a_prompt_is_fetched_once_while_fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(prompts.time, "monotonic", lambda: now[0])
    bucket = Bucket(2.0)
    loader = PromptLoader(bucket)
    for _ in range(8):  # at 0, 5, ... 35 s
        assert len(load(loader, "greeting.wav")) == 16000
        now[0] += 5.0
    assert bucket.fetches == ["greeting.wav"] * 2  # read again at 35 s, once older than the TTL
    assert CACHE_TTL_S == 30.0


def test_objects_played_once_do_not_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(prompts.time, "monotonic", lambda: now[0])
    bucket = Bucket(6.0)  # a 6 s message: 96 kB decoded
    loader = PromptLoader(bucket)
    for k in range(200):  # 200 messages played back, one every 0.1 s: all within the TTL
        load(loader, f"message-{k}.wav")
        now[0] += 0.1
    assert loader.cached_bytes() <= CACHE_BYTES
    assert len(bucket.fetches) == 200
    now[0] += CACHE_TTL_S + 1
    load(loader, "greeting.wav")  # a new entry drops every expired one
    assert loader.cached_bytes() == 96000


def test_an_object_larger_than_the_cache_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = Bucket(CACHE_BYTES / 16000 + 1)  # decoded: just over CACHE_BYTES
    loader = PromptLoader(bucket)
    load(loader, "long.wav")
    load(loader, "long.wav")
    assert bucket.fetches == ["long.wav", "long.wav"] and loader.cached_bytes() == 0
