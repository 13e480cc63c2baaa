"""WAV files: read any PCM WAV into 8 kHz mono, write 8 kHz 16-bit mono, stream recordings.

Reading accepts RIFF/WAVE with format PCM (8-bit unsigned, 16/24/32-bit signed), IEEE float
(32/64-bit), G.711 A-law/µ-law and WAVE_FORMAT_EXTENSIBLE wrapping any of those, at any rate and
channel count; channels are averaged and the rate converted with an anti-alias filter.
Anything else raises :class:`WavError` with a message that says what was wrong.

:class:`WavWriter` streams a recording to disk: the header is written first with placeholder
sizes, frames are appended, and :meth:`WavWriter.close` patches the sizes and fsyncs. A file left
behind by a crash (sizes never patched) is made valid again by :func:`repair_header`, which keeps
every sample that reached the disk.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from media import g711
from media.frame import SAMPLE_RATE, Samples, to_int16
from media.resample import resample

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

HEADER_BYTES = 44  # canonical header written by this module


class WavError(ValueError):
    """The data is not a WAV file this module can read."""


@dataclass(frozen=True)
class WavInfo:
    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int
    frames: int


def _parse(data: bytes) -> tuple[WavInfo, memoryview]:
    if len(data) < 12 or data[0:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    pos = 12
    fmt: bytes | None = None
    payload: memoryview | None = None
    mv = memoryview(data)
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body_start = pos + 8
        body_end = min(body_start + size, len(data))
        if cid == b"fmt ":
            fmt = data[body_start:body_end]
        elif cid == b"data":
            payload = mv[body_start:body_end]
            if fmt is not None:
                break
        pos = body_start + size + (size & 1)
    if fmt is None or len(fmt) < 16:
        raise WavError("WAV file has no valid 'fmt ' chunk")
    if payload is None:
        raise WavError("WAV file has no 'data' chunk")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt, 0)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(fmt) < 40:
            raise WavError("WAVE_FORMAT_EXTENSIBLE header is truncated")
        (tag,) = struct.unpack_from("<H", fmt, 24)  # first two bytes of the sub-format GUID
    if channels < 1:
        raise WavError("WAV file declares no channels")
    if rate < 1000 or rate > 384000:
        raise WavError(f"unsupported sample rate {rate} Hz")
    if block_align == 0 or block_align != channels * ((bits + 7) // 8):
        raise WavError(f"inconsistent block alignment {block_align} for {channels} ch × {bits} bit")
    n = len(payload) // block_align
    return WavInfo(tag, channels, rate, bits, n), payload[: n * block_align]


def _decode(info: WavInfo, payload: memoryview) -> npt.NDArray[np.float64]:
    """Samples as float64 in int16 units, shape (frames, channels)."""
    tag, bits, ch = info.format_tag, info.bits_per_sample, info.channels
    raw = bytes(payload)
    x: npt.NDArray[np.float64]
    if tag == WAVE_FORMAT_PCM:
        if bits == 8:
            x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
        elif bits == 16:
            x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
        elif bits == 24:
            b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            v = np.where(v & 0x800000, v - 0x1000000, v)
            x = v.astype(np.float64) / 256.0
        elif bits == 32:
            x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
        else:
            raise WavError(f"unsupported PCM sample width {bits} bits")
    elif tag == WAVE_FORMAT_IEEE_FLOAT:
        if bits == 32:
            x = np.frombuffer(raw, dtype="<f4").astype(np.float64) * 32768.0
        elif bits == 64:
            x = np.frombuffer(raw, dtype="<f8") * 32768.0
        else:
            raise WavError(f"unsupported float sample width {bits} bits")
        x = np.nan_to_num(x, nan=0.0, posinf=32767.0, neginf=-32768.0)
    elif tag in (WAVE_FORMAT_MULAW, WAVE_FORMAT_ALAW):
        if bits != 8:
            raise WavError(f"G.711 WAV must be 8 bits per sample, got {bits}")
        codes = np.frombuffer(raw, dtype=np.uint8)
        dec = g711.ulaw_decode(codes) if tag == WAVE_FORMAT_MULAW else g711.alaw_decode(codes)
        x = dec.astype(np.float64)
    else:
        raise WavError(f"unsupported WAV format tag 0x{tag:04x} (only PCM, float and G.711 are read)")
    return x.reshape(-1, ch)


def read_info(path: str | os.PathLike[str]) -> WavInfo:
    with open(path, "rb") as f:
        return _parse(f.read())[0]


def decode_wav(data: bytes, rate: int = SAMPLE_RATE) -> Samples:
    """Decode WAV bytes to mono int16 at ``rate`` (mix-down by averaging, anti-aliased resampling)."""
    info, payload = _parse(data)
    x = _decode(info, payload).mean(axis=1)
    if info.sample_rate != rate:
        x = resample(x, info.sample_rate, rate)
    return to_int16(x)


def read_wav(path: str | os.PathLike[str], rate: int = SAMPLE_RATE) -> Samples:
    """Read any supported WAV file as mono int16 at ``rate`` (8 kHz by default)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise WavError(f"cannot read {path}: {e.strerror}") from e
    return decode_wav(data, rate)


def header(n_samples: int, rate: int = SAMPLE_RATE, channels: int = 1) -> bytes:
    """Canonical 44-byte header for 16-bit PCM."""
    data_bytes = n_samples * 2 * channels
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16,
                       WAVE_FORMAT_PCM, channels, rate, rate * 2 * channels, 2 * channels, 16,
                       b"data", data_bytes)


def encode_wav(samples: Samples, rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV bytes. ``samples`` is (n,) for mono or (n, channels) interleaved."""
    a = np.asarray(samples, dtype=np.int16)
    channels = 1 if a.ndim == 1 else int(a.shape[1])
    n = a.shape[0]
    return header(n, rate, channels) + a.astype("<i2").tobytes()


def write_wav(path: str | os.PathLike[str], samples: Samples, rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit PCM (8 kHz mono by default) atomically: temp file, fsync, rename."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(encode_wav(samples, rate))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


class WavWriter:
    """Streaming 16-bit PCM writer for recordings.

    Not for the media path itself: the recorder thread owns it. Sizes are patched by :meth:`close`
    (and by :meth:`flush` if ``patch_on_flush``); until then the header carries placeholder sizes that
    :func:`repair_header` fixes after a crash.
    """

    def __init__(self, f: BinaryIO | str | os.PathLike[str], rate: int = SAMPLE_RATE, channels: int = 1) -> None:
        self._own = isinstance(f, str | os.PathLike)
        self._f: BinaryIO = open(f, "wb") if isinstance(f, str | os.PathLike) else f  # noqa: SIM115
        self.rate = rate
        self.channels = channels
        self.samples_written = 0
        self._f.write(header(0, rate, channels))
        self.closed = False

    def write(self, samples: Samples) -> None:
        a = np.asarray(samples, dtype=np.int16)
        self._f.write(a.astype("<i2", copy=False).tobytes())
        self.samples_written += a.shape[0]

    def _patch(self) -> None:
        pos = self._f.tell()
        self._f.seek(0)
        self._f.write(header(self.samples_written, self.rate, self.channels))
        self._f.seek(pos)

    def flush(self, fsync: bool = False, patch: bool = False) -> None:
        if patch:
            self._patch()
        self._f.flush()
        if fsync:
            os.fsync(self._f.fileno())

    def close(self, fsync: bool = True) -> None:
        if self.closed:
            return
        self._patch()
        self.flush(fsync=fsync)
        if self._own:
            self._f.close()
        self.closed = True

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair_header(path: str | os.PathLike[str]) -> int:
    """Make a 16-bit PCM WAV written by :class:`WavWriter` valid after a crash.

    Truncates a trailing partial sample, rewrites the RIFF and data sizes from the file length and
    fsyncs. Returns the number of samples (per channel) kept.
    """
    with open(path, "r+b") as f:
        head = f.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES or head[0:4] != b"RIFF" or head[36:40] != b"data":
            raise WavError(f"{path} is not a WAV written by WavWriter")
        channels, rate = (int(v) for v in struct.unpack_from("<HI", head, 22))
        size = f.seek(0, os.SEEK_END)
        block = 2 * channels
        n = (size - HEADER_BYTES) // block
        f.truncate(HEADER_BYTES + n * block)
        f.seek(0)
        f.write(header(n, rate, channels))
        f.flush()
        os.fsync(f.fileno())
    return n
