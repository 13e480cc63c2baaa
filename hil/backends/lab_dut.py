"""The Pi on the bench as the scenarios' device under test, seen only through what the rig file says.

In CI the scenarios start their own ``gatewayd run`` (:class:`hil.dut.Dut`). On the bench gatewayd
already runs on the Pi, started by systemd with the scripted HIL handler; :class:`LabDut` offers the same
methods the scenarios use, reading and writing through the rig's ``dut`` section:

* the handler's script and transcript: ``script_file`` / ``transcript_file`` (the Pi's files as the
  controller sees them, e.g. through sshfs), prompts: ``prompts_dir``;
* recordings: ``bucket``, a directory (a mount or copy of the Pi's local bucket) or ``s3://bucket/prefix``
  (new objects are downloaded to a cache directory so that scenarios get files either way);
* log: the output of ``log_command``; status: ``status_socket`` or ``status_command``; metrics:
  ``metrics_url``.

It never starts or stops the Pi's daemon: :meth:`stop` does nothing and :attr:`alive` asks its status.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gatewayd.commands.status import query
from hil.dut_view import DutView
from hil.rig import DutConfig
from media.frame import Samples
from media.wav import write_wav

log = logging.getLogger(__name__)

__all__ = ["LabDut", "LabDutError"]


class LabDutError(Exception):
    """The rig file does not say how to reach this part of the DUT, or it did not answer."""


class LabDut(DutView):
    poll_s = 0.1  # over the network

    def __init__(self, cfg: DutConfig, cache_dir: Path | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.line_name = cfg.line
        self._cache = cache_dir or Path(tempfile.mkdtemp(prefix="gatewayd-hil-dut-"))
        self._log_mark = ""
        self._s3: Any = None

    # ------------------------------------------------------------------ life cycle (not ours)
    def status(self) -> dict[str, Any]:
        """What ``gatewayd status --json`` says on the Pi."""
        if self.cfg.status_socket:
            return query(self.cfg.status_socket)
        if self.cfg.status_command:
            out = subprocess.run(list(self.cfg.status_command), capture_output=True, text=True, timeout=20,
                                 check=False)
            if out.returncode != 0:
                raise LabDutError(f"{' '.join(self.cfg.status_command)}: exit {out.returncode}: {out.stderr.strip()}")
            result: dict[str, Any] = json.loads(out.stdout)
            return result
        raise LabDutError("the rig file gives neither dut.status_socket nor dut.status_command")

    @property
    def alive(self) -> bool:
        try:
            self.status()
        except (OSError, ValueError, LabDutError, subprocess.SubprocessError):
            return False
        return True

    def start(self) -> LabDut:
        return self

    def stop(self, timeout: float = 20.0) -> int | None:
        return None  # the Pi's gatewayd belongs to systemd on the Pi

    # ------------------------------------------------------------------ the handler
    def _file(self, which: str) -> Path:
        value = getattr(self.cfg, which)
        if not value:
            raise LabDutError(f"the rig file has no dut.{which}: the scripted handler on the Pi is not reachable")
        return Path(value)

    def set_script(self, script: Mapping[str, Any]) -> None:
        path = self._file("script_file")
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(script))
        tmp.replace(path)

    def put_prompt(self, key: str, samples: Samples) -> Path:
        """Store a prompt in the Pi's prompts bucket (``dut.prompts_dir``) under ``key``."""
        path = self._file("prompts_dir") / key
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, samples)
        return path

    def mark(self) -> None:
        """Start of a scenario: transcript, log and recordings count from here."""
        self.mark_view()
        self._log_mark = self._log_all() if self.cfg.log_command else ""

    def _transcript_path(self) -> Path:
        return self._file("transcript_file")

    def _has_transcript(self) -> bool:
        return bool(self.cfg.transcript_file)

    # ------------------------------------------------------------------ recordings
    def _all_recordings(self) -> list[Path]:
        if self.cfg.bucket_is_s3:
            return self._s3_sync()
        return sorted(Path(self.cfg.bucket).rglob("*.wav"))

    def _s3_sync(self) -> list[Path]:
        """Download the bucket's WAV objects not in the cache yet; every cached one as a Path."""
        bucket, _, prefix = self.cfg.bucket[5:].partition("/")
        if self._s3 is None:
            import boto3  # only for an s3:// DUT bucket

            # a session of its own: the credential chain read now, not what an earlier client cached
            self._s3 = boto3.session.Session().client("s3", endpoint_url=self.cfg.s3_endpoint_url or None)
        root = self._cache / "s3" / bucket
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = str(obj["Key"])
                if not key.endswith(".wav"):
                    continue
                dest = root / key
                if not dest.exists():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    self._s3.download_file(bucket, key, str(dest))
        return sorted(root.rglob("*.wav")) if root.exists() else []

    # ------------------------------------------------------------------ log and metrics
    def _log_all(self) -> str:
        out = subprocess.run(list(self.cfg.log_command), capture_output=True, text=True, timeout=30, check=False)
        return out.stdout

    def log_text(self) -> str:
        """The DUT's log since :meth:`mark` ('' without ``dut.log_command``)."""
        if not self.cfg.log_command:
            return ""
        text = self._log_all()
        return text[len(self._log_mark):] if text.startswith(self._log_mark) else text

    def _metrics_url(self) -> str:
        if not self.cfg.metrics_url:
            raise LabDutError("the rig file has no dut.metrics_url")
        return self.cfg.metrics_url
