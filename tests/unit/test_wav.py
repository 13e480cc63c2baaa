import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from media import g711, wav
from media.frame import to_int16


def tone(freq: float, rate: int, seconds: float, amp: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def write_with_stdlib(path: Path, data: bytes, rate: int, width: int, channels: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)


def level_at(x: np.ndarray, freq: float, rate: int = 8000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = round(freq * len(x) / rate)
    return float(spec[max(k - 2, 0):k + 3].max())


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_reads_any_pcm_to_8k_mono(tmp_path: Path, width: int, channels: int, rate: int) -> None:
    x = tone(1000, rate, 0.5)
    if width == 1:
        raw = np.clip(np.rint(x / 256 + 128), 0, 255).astype(np.uint8).tobytes()
    elif width == 2:
        raw = to_int16(x).astype("<i2").tobytes()
    elif width == 3:
        v = np.rint(x * 256).astype(np.int32)
        raw = b"".join(struct.pack("<i", int(s))[:3] for s in v)
    else:
        raw = (np.rint(x * 65536).astype("<i4")).tobytes()
    if channels == 2:
        frame = width
        a = np.frombuffer(raw, dtype=np.uint8).reshape(-1, frame)
        raw = np.concatenate([a, a], axis=1).tobytes()
    p = tmp_path / "in.wav"
    write_with_stdlib(p, raw, rate, width, channels)
    y = wav.read_wav(p)
    assert y.dtype == np.int16
    assert abs(len(y) - 4000) <= 2
    mid = y[500:3500].astype(float)
    # amplitude preserved within 0.5 dB (8-bit has quantisation noise, still well inside)
    rms = np.sqrt(np.mean(mid**2))
    assert 20 * np.log10(rms / (10000 / np.sqrt(2))) == pytest.approx(0, abs=0.5)
    assert level_at(mid, 1000) > 100 * level_at(mid, 2000)


def test_resampling_removes_content_above_4k(tmp_path: Path) -> None:
    # 6 kHz at 44.1 kHz would alias to 2 kHz with naive decimation
    x = tone(6000, 44100, 0.5) + tone(500, 44100, 0.5)
    p = tmp_path / "alias.wav"
    write_with_stdlib(p, to_int16(x).tobytes(), 44100, 2, 1)
    y = wav.read_wav(p)[500:3500].astype(float)
    assert level_at(y, 2000) < level_at(y, 500) / 1000  # > 60 dB down


def test_reads_g711_and_float_wav(tmp_path: Path) -> None:
    x = to_int16(tone(440, 8000, 0.2))
    for tag, codes in ((7, g711.ulaw_encode(x)), (6, g711.alaw_encode(x))):
        fmt = struct.pack("<HHIIHH", tag, 1, 8000, 8000, 1, 8)
        data = codes.tobytes()
        body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
        p = tmp_path / f"g711_{tag}.wav"
        p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
        y = wav.read_wav(p)
        assert np.max(np.abs(y.astype(int) - x.astype(int))) < 1100  # G.711 quantisation only
    f = (x.astype(np.float32) / 32768).tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(f)) + f
    p = tmp_path / "float.wav"
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    np.testing.assert_array_equal(wav.read_wav(p), x)


@pytest.mark.parametrize("data", [b"", b"RIFF", b"RIFF\0\0\0\0WAVE", b"not a wav at all" * 4,
                                  b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0" + bytes(16)])
def test_garbage_is_a_clear_error(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "bad.wav"
    p.write_bytes(data)
    with pytest.raises(wav.WavError):
        wav.read_wav(p)


def test_missing_file_is_a_wav_error(tmp_path: Path) -> None:
    with pytest.raises(wav.WavError, match="cannot read"):
        wav.read_wav(tmp_path / "nope.wav")


def test_written_file_is_8k_16bit_mono_and_reads_back(tmp_path: Path) -> None:
    x = to_int16(tone(300, 8000, 1.0))
    p = tmp_path / "out.wav"
    wav.write_wav(p, x)
    with wave.open(str(p)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 8000, 8000)
    np.testing.assert_array_equal(wav.read_wav(p), x)


def test_streaming_writer_and_crash_repair(tmp_path: Path) -> None:
    x = to_int16(tone(300, 8000, 1.0))
    p = tmp_path / "rec.wav"
    w = wav.WavWriter(p)
    w.write(x[:4000])
    w.flush(fsync=True)
    # simulate a crash: the header still says 0 samples, and half a sample is dangling
    with open(p, "ab") as f:
        f.write(b"\x01")
    assert wav.read_info(p).frames == 0  # header never patched: the audio is invisible until repaired
    assert wav.repair_header(p) == 4000
    np.testing.assert_array_equal(wav.read_wav(p), x[:4000])
    w2 = wav.WavWriter(tmp_path / "ok.wav")
    w2.write(x)
    w2.close()
    np.testing.assert_array_equal(wav.read_wav(tmp_path / "ok.wav"), x)
