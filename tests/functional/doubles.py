"""An in-memory recording store for functional tests of the call runtime that are not about storage
(the real store has its own suite against a real S3-compatible server)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Mapping

import numpy as np

from gatewayd.runtime.services import UploadOutcome
from media.frame import Samples
from media.wav import encode_wav


class MemoryRecording:
    def __init__(self, store: MemoryStore, bucket: str, key: str, metadata: Mapping[str, str]) -> None:
        self.store, self.bucket, self.key, self.metadata = store, bucket, key, dict(metadata)
        self.chunks: list[Samples] = []
        self.done: concurrent.futures.Future[UploadOutcome] = concurrent.futures.Future()

    def write(self, samples: Samples) -> None:
        self.chunks.append(np.array(samples, dtype=np.int16))

    def finish(self, keep_samples: int) -> None:
        audio = (np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16))[:keep_samples]
        self.store.objects[(self.bucket, self.key)] = encode_wav(audio)
        self.store.metadata[(self.bucket, self.key)] = self.metadata
        self.done.set_result(UploadOutcome(True, self.bucket, self.key))

    def outcome(self) -> Awaitable[UploadOutcome]:
        return asyncio.wrap_future(self.done)


class MemoryStore:
    def __init__(self, buckets: tuple[str, ...] = ("recordings", "prompts")) -> None:
        self.buckets = set(buckets)
        self.objects: dict[tuple[str, str], bytes] = {}
        self.metadata: dict[tuple[str, str], dict[str, str]] = {}

    def open(self, *, bucket: str, key: str, metadata: Mapping[str, str], channels: int = 1) -> MemoryRecording:
        return MemoryRecording(self, bucket, key, metadata)

    def bucket_known(self, bucket: str) -> bool:
        return bucket in self.buckets

    def fetch(self, bucket: str, key: str) -> bytes:
        if (bucket, key) not in self.objects:
            raise FileNotFoundError(f"{bucket}/{key}")
        return self.objects[(bucket, key)]
