import json
from pathlib import Path

import pytest

from gatewayd.store.sidecar import PartRecord, Sidecar, State


def test_roundtrip_is_exact_and_atomic(tmp_path: Path) -> None:
    sc = Sidecar(recording_id="r", bucket="b", key="k/x.wav", channels=2, sample_rate=8000,
                 metadata={"call-id": "c"}, state=State.CLOSED, samples=10, size=84, upload_id="u1",
                 parts=[PartRecord(2, 5 << 20, 5 << 20, '"etag"')], stale_uploads=["old"], spool_error="EFBIG")
    sc.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left
    back = Sidecar.load(tmp_path / "r.json")
    assert back == sc
    assert json.loads((tmp_path / "r.json").read_text())["state"] == "closed"


@pytest.mark.parametrize("text", ["", "{", "[]", '{"version": 2}', '{"version": 1}',
                                  '{"version": 1, "recording_id": "r", "bucket": "b", "key": "k", "channels": "x",'
                                  ' "sample_rate": 8000}',
                                  '{"version": 1, "recording_id": "r", "bucket": "b", "key": "k", "channels": 1,'
                                  ' "sample_rate": 8000, "state": "weird"}'])
def test_malformed_sidecars_are_refused(tmp_path: Path, text: str) -> None:
    p = tmp_path / "x.json"
    p.write_text(text)
    with pytest.raises(ValueError):
        Sidecar.load(p)


def test_remove_deletes_wav_then_sidecar(tmp_path: Path) -> None:
    sc = Sidecar(recording_id="r", bucket="b", key="k", channels=1, sample_rate=8000, metadata={})
    sc.save(tmp_path)
    (tmp_path / "r.wav").write_bytes(b"x")
    sc.remove(tmp_path)
    assert list(tmp_path.iterdir()) == []
    sc.remove(tmp_path)  # idempotent
