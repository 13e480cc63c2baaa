"""Helpers shared by the recording-store tests: deterministic signals, feeding a recording, decoding WAVs."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gatewayd.store.recording import Recording
from gatewayd.store.sidecar import Sidecar
from media.wav import WavWriter

FRAME = 160


def signal(n: int, seed: int = 0, start: int = 0) -> npt.NDArray[np.int16]:
    """A deterministic, non-repeating-looking int16 sequence: sample i depends on (i, seed) only."""
    i = np.arange(start, start + n, dtype=np.int64)
    return ((i * 7919 + seed * 104729 + (i * i) % 65521) % 65536 - 32768).astype(np.int16)


def stereo_signal(n: int, seed: int = 0, start: int = 0) -> npt.NDArray[np.int16]:
    return np.column_stack((signal(n, seed, start), signal(n, seed + 1000, start)))


def feed(rec: Recording, samples: npt.NDArray[np.int16], block: int = FRAME, start: int = 0,
         limit: int | None = None) -> None:
    """Put ``samples`` in blocks like the media path, faster than real time but without overrunning the
    ring (a test producer may wait; the media path never does)."""
    limit = rec.ring.capacity // 2 if limit is None else limit
    for i in range(start, len(samples), block):
        while len(rec.ring) > limit and rec.accepting:
            time.sleep(0.001)
        assert rec.put(samples[i:i + block])


def parse_wav(data: bytes) -> tuple[int, int, npt.NDArray[np.int16]]:
    """(channels, rate, samples) of a canonical 16-bit PCM WAV, checking that its sizes are consistent."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", "not a RIFF/WAVE file"
    riff_size = struct.unpack_from("<I", data, 4)[0]
    assert riff_size == len(data) - 8, f"RIFF size {riff_size} != {len(data) - 8}"
    fmt_tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", data, 20)
    assert (fmt_tag, bits, align, byte_rate) == (1, 16, 2 * channels, rate * 2 * channels)
    assert data[36:40] == b"data"
    data_size = struct.unpack_from("<I", data, 40)[0]
    assert data_size == len(data) - 44, f"data size {data_size} != {len(data) - 44}"
    samples = np.frombuffer(data, dtype="<i2", offset=44).astype(np.int16)
    return channels, rate, samples.reshape(-1, channels) if channels > 1 else samples


def crashed_recording(spool: Path, rid: str, bucket: str, key: str, x: np.ndarray, channels: int = 1,
                      extra: bytes = b"") -> None:
    """What a crash mid-recording leaves: sidecar 'recording', WAV with placeholder sizes (+ a torn sample)."""
    spool.mkdir(parents=True, exist_ok=True)
    Sidecar(recording_id=rid, bucket=bucket, key=key, channels=channels, sample_rate=8000,
            metadata={"transaction-id": "tx", "call-id": "cid"}).save(spool)
    with open(spool / f"{rid}.wav", "wb") as f:
        w = WavWriter(f, 8000, channels)
        w.write(x)
        w.flush()
        f.write(extra)
    # never closed: header sizes still 0
