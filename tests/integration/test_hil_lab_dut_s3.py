"""hil/backends/lab_dut.py with the DUT's recordings in S3 (a real SeaweedFS): new objects since mark()
come back as local WAV files, older ones and other prefixes do not."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from gatewayd.testing.seaweedfs import SeaweedS3
from hil.backends.lab_dut import LabDut, LabDutError
from hil.rig import DutConfig
from media.wav import write_wav

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _wav_bytes(seed: int, tmp_path: Path) -> tuple[bytes, np.ndarray]:
    x = np.random.default_rng(seed).integers(-8000, 8000, 4000).astype(np.int16)
    p = tmp_path / f"{seed}.wav"
    write_wav(p, x)
    return p.read_bytes(), x


def test_s3_bucket_recordings_since_mark(s3_bucket: tuple[SeaweedS3, str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    server, bucket = s3_bucket
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    s3 = server.client()
    old, _ = _wav_bytes(1, tmp_path)
    s3.put_object(Bucket=bucket, Key="calls/old.wav", Body=old)
    dut = LabDut(DutConfig(bucket=f"s3://{bucket}/calls", s3_endpoint_url=server.endpoint_url),
                 cache_dir=tmp_path / "cache")
    dut.mark()
    assert dut.recordings() == []
    new, x = _wav_bytes(2, tmp_path)
    s3.upload_fileobj(io.BytesIO(new), bucket, "calls/2026/new.wav")
    s3.put_object(Bucket=bucket, Key="other/elsewhere.wav", Body=new)  # outside the prefix
    s3.put_object(Bucket=bucket, Key="calls/2026/new.json", Body=b"{}")  # not a recording
    got = dut.wait_recordings(1, 10)
    assert [p.relative_to(tmp_path / "cache" / "s3" / bucket).as_posix() for p in got] == ["calls/2026/new.wav"]
    assert np.array_equal(dut.read_recording(got[0]), x)
    assert dut.recordings() == got  # listed again, downloaded once


def test_a_rig_without_handler_files_says_which_key_is_missing(tmp_path: Path) -> None:
    dut = LabDut(DutConfig(bucket=str(tmp_path)))
    with pytest.raises(LabDutError, match=r"dut\.script_file"):
        dut.set_script({})
    with pytest.raises(LabDutError, match=r"dut\.transcript_file"):
        dut.transcript()
    with pytest.raises(LabDutError, match=r"dut\.prompts_dir"):
        dut.put_prompt("x.wav", np.zeros(8, dtype=np.int16))
    with pytest.raises(LabDutError, match=r"dut\.metrics_url"):
        dut.metrics()
    assert not dut.alive and dut.log_text() == ""
